package audit

import (
	"bytes"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

func FuzzDecodeEntry(f *testing.F) {
	good, _ := EncodeEntry(3, Entry{Actor: "spiffe://moat/admin", Action: "revoke", Target: "0a1b", Result: "ok", Detail: map[string]string{"k": "v"}}, nil)
	f.Add(good)
	f.Add([]byte{formatJSON})
	f.Add([]byte{formatSealed, 1, 2})
	f.Add([]byte("\x01{} {}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(3, b, nil)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := EncodeEntry(3, e, nil)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := DecodeEntry(3, again, nil)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if !e2.Time.Equal(e.Time) || e2.Action != e.Action || e2.Actor != e.Actor || e2.Target != e.Target || len(e2.Detail) != len(e.Detail) {
			t.Fatalf("round trip changed the entry: %+v → %+v", e, e2)
		}
	})
}

func FuzzParseProof(f *testing.F) {
	p := &Proof{Index: 2, Size: 5, Entry: []byte("\x01{}"), Hashes: make(tlog.RecordProof, 3)}
	text, _ := p.MarshalText()
	f.Add(text)
	f.Add([]byte("moat audit inclusion proof v1\nindex 0\nsize 1\nroot =\nentry \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProof(b)
		if err != nil {
			return
		}
		out, err := p.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("proof text does not round-trip:\n%q\n%q", b, out)
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("moat-audit\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
	f.Add([]byte("o\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCheckpoint(b)
		if err != nil {
			return
		}
		c2, err := ParseCheckpoint(c.Text())
		if err != nil || c2 != c {
			t.Fatalf("checkpoint does not round-trip: %+v → %+v, %v", c, c2, err)
		}
	})
}

func FuzzFrames(f *testing.F) {
	f.Add(appendFrame(appendFrame(nil, []byte("a")), []byte("bc")))
	f.Add([]byte{0, 0, 0, 9, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := newFrameReader(bytes.NewReader(b), 1<<10)
		var re []byte
		for i := 0; i < len(b)+1; i++ {
			p, _, err := fr.next()
			if err != nil {
				break
			}
			re = appendFrame(re, p)
		}
		if !bytes.HasPrefix(b, re) || int64(len(re)) != fr.off {
			t.Fatalf("frames read back do not match the input prefix")
		}
	})
}

// FuzzConsistency: a consistency proof from the network, however made, is
// checked without panicking, and never makes a witness accept a
// checkpoint whose tree does not extend the one it holds.
func FuzzConsistency(f *testing.F) {
	dir, v := newTestLog(f, 9, nil)
	lf := loadFiles(f, dir)
	l, err := Open(Config{Dir: dir, Verifier: v, ReadOnly: true, Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	_, good, err := l.ProveConsistency(4)
	if err != nil {
		f.Fatal(err)
	}
	var seed []byte
	for _, b := range ProofBytes(good) {
		seed = append(seed, b...)
	}
	f.Add(seed, uint8(4), uint8(9))
	f.Add([]byte{}, uint8(0), uint8(9))
	f.Add(bytes.Repeat([]byte{1}, 96), uint8(3), uint8(8))
	f.Fuzz(func(t *testing.T, raw []byte, older, newer uint8) {
		o, n := int(older)%len(lf.cps), int(newer)%len(lf.cps)
		var hs [][]byte
		for len(raw) >= 32 && len(hs) < 200 {
			hs = append(hs, raw[:32])
			raw = raw[32:]
		}
		p, err := ParseProofBytes(hs)
		if err != nil {
			return
		}
		c, err := CheckConsistency(v, lf.cps[o], lf.cps[n], p)
		if err != nil {
			return
		}
		// Accepted: the newer tree must really extend the older one.
		if oc, _ := parseUnverified(lf.cps[o]); c.Size < oc.Size {
			t.Fatalf("accepted a checkpoint of %d after one of %d", c.Size, oc.Size)
		}
	})
}
