package flowstore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"moat/internal/flow"
)

// The minute rollup keeps one row per minute: every (class, source,
// destination, verdict, rule) of that minute with its connections and
// bytes, encoded together in one blob, sealed in a keyed partition. One
// row per minute rather than per key keeps ingestion cheap (a batch
// rewrites the one or two minutes it spans, one seal each, instead of a
// row and a seal per key), and a window's edge minutes are a few blobs to
// open; their entries are filtered in Go.

const minuteSchema = `
CREATE TABLE IF NOT EXISTS talkers_minute (
	minute INTEGER PRIMARY KEY,
	agg    BLOB NOT NULL
);
`

// minuteKey is one entry of a minute's blob.
type minuteKey struct {
	class int
	flow.Columns
}

func minuteAD(minute int64) []byte {
	return []byte("moat/flow/talkers-minute:" + strconv.FormatInt(minute, 10))
}

func encodeMinute(m map[minuteKey][2]int64) []byte {
	var b []byte
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for k, v := range m {
		b = binary.AppendUvarint(b, uint64(k.class))
		str(k.Src)
		str(k.SrcName)
		str(k.Dst)
		str(k.DstName)
		str(k.Verdict)
		str(k.Rule)
		b = binary.AppendVarint(b, v[0])
		b = binary.AppendVarint(b, v[1])
	}
	return b
}

var errMinuteBlob = errors.New("bad minute rollup entry")

func decodeMinute(b []byte, fn func(k minuteKey, v [2]int64)) error {
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	str := func() (string, bool) {
		l, ok := uv()
		if !ok || l > uint64(len(b)) {
			return "", false
		}
		s := string(b[:l])
		b = b[l:]
		return s, true
	}
	for len(b) > 0 {
		var k minuteKey
		c, ok := uv()
		if !ok {
			return errMinuteBlob
		}
		k.class = int(c)
		for _, p := range []*string{&k.Src, &k.SrcName, &k.Dst, &k.DstName, &k.Verdict, &k.Rule} {
			if *p, ok = str(); !ok {
				return errMinuteBlob
			}
		}
		var v [2]int64
		for i := range v {
			x, n := binary.Varint(b)
			if n <= 0 {
				return errMinuteBlob
			}
			v[i], b = x, b[n:]
		}
		fn(k, v)
	}
	return nil
}

// openMinute returns a minute row's entries in the clear.
func (s *Store) openMinute(p *partition, minute int64, agg []byte) ([]byte, error) {
	if !p.keyed {
		return agg, nil
	}
	pt, err := s.cfg.Sealer.Decrypt(agg, minuteAD(minute))
	if err != nil {
		return nil, fmt.Errorf("flow: minute rollup of %q: %w", p.path, err)
	}
	return pt, nil
}

// rollupMinutes adds a batch's counts, by minute, to the minute rows.
func (s *Store) rollupMinutes(ctx context.Context, tx *sql.Tx, p *partition, roll map[int64]map[minuteKey][2]int64) error {
	for minute, add := range roll {
		var agg []byte
		switch err := tx.QueryRowContext(ctx, "SELECT agg FROM talkers_minute WHERE minute = ?", minute).Scan(&agg); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("flow: ingest: minute rollup: %w", err)
		default:
			pt, err := s.openMinute(p, minute, agg)
			if err != nil {
				return err
			}
			if err := decodeMinute(pt, func(k minuteKey, v [2]int64) {
				a := add[k]
				add[k] = [2]int64{flow.AddCount(a[0], v[0]), flow.AddCount(a[1], v[1])}
			}); err != nil {
				return fmt.Errorf("flow: ingest: minute rollup of %q: %w", p.path, err)
			}
		}
		agg = encodeMinute(add)
		if p.keyed {
			var err error
			if agg, err = s.cfg.Sealer.Encrypt(agg, minuteAD(minute)); err != nil {
				return fmt.Errorf("flow: ingest: minute rollup: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO talkers_minute(minute, agg) VALUES (?, ?) ON CONFLICT DO UPDATE SET agg = excluded.agg", minute, agg); err != nil {
			return fmt.Errorf("flow: ingest: minute rollup: %w", err)
		}
	}
	return nil
}

// minuteRows adds the minute rollup's minutes [mlo, mhi) of partition p.
func (s *Store) minuteRows(ctx context.Context, p *partition, f *flow.Filter, mlo, mhi int64, acc map[edgeKey]*edgeCount) error {
	rows, err := p.db.QueryContext(ctx, "SELECT minute, agg FROM talkers_minute WHERE minute >= ? AND minute < ?", mlo, mhi)
	if err != nil {
		return fmt.Errorf("flow: top talkers %q: %w", p.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var minute int64
		var agg []byte
		if err := rows.Scan(&minute, &agg); err != nil {
			return fmt.Errorf("flow: top talkers %q: %w", p.path, err)
		}
		pt, err := s.openMinute(p, minute, agg)
		if err != nil {
			return err
		}
		if err := decodeMinute(pt, func(k minuteKey, v [2]int64) {
			if !f.MatchColumns(k.class, &k.Columns) {
				return
			}
			addEdge(acc, edgeKey{src: k.Src, dst: k.Dst, verdict: k.Verdict}, v[0], v[1])
		}); err != nil {
			return fmt.Errorf("flow: top talkers %q: minute rollup: %w", p.path, err)
		}
	}
	return rows.Err()
}
