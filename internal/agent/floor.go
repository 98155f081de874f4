package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"moat/internal/api"
	"moat/internal/identity"
	"moat/internal/seal"
)

// The agent never goes back. What the control plane publishes carries
// versions that only grow: the store revision of a full snapshot, the
// revocation list's Version, the policy's Version. The agent remembers the
// highest of each it accepted (floorFile, kept across restarts) and refuses
// a frame that carries an older one, whoever sends it: a server whose
// store lags, one of an earlier restore epoch (below), an old response
// replayed. A refused
// frame changes nothing: the revocations, intentions, grants and registry
// the agent holds stay as they are; the refusal is logged (the first, then
// at each power of two) and counted in moat_agent_rollbacks_refused_total.
//
// A break-glass grant carries no version of its own, but its revocation is
// for good: the floor keeps each grant of this node it saw revoked (its ID,
// and when it would have ended anyway), and refuses a frame that shows it
// active again, after a restart too. An entry goes once its grant would
// have ended. The floor keeps at most maxRevokedGrants of them; a revoked
// grant beyond that closes the node to every grant until that one would
// have ended, rather than be forgotten at the next restart.
//
// A control plane restored from a backup carries a restore epoch above
// every one before it (moat backup restore sets it), in every frame. The
// floor compares the epoch first: a frame of an older epoch is refused
// whatever its versions, and a snapshot of a newer one is taken although
// its versions are older, which then become the floor. Only a snapshot
// moves the agent to a newer epoch. What the restored revocation list
// lacks of the one the agent held (revocations made after the backup) the
// floor carries on (Carried), merged into every list taken, each serial
// until its certificate would have ended, each revoked identity for good,
// as the control plane keeps them; past maxCarried, the newer epoch is
// refused rather than any of them forgotten. With each revocation carried
// the floor keeps the tag the control plane streamed with it
// (api.Update.RevocationTags), and the agent reports those the list lacks
// to the restored control plane (reportCarried), which applies again
// those it tagged itself.
//
// moat agent floor reset (ResetFloor), with the agent stopped, drops
// FloorFile: for a control plane rolled back without a newer epoch (a
// restore whose clock was behind an epoch the agent holds, a store moved
// by hand), or to drop the revocations carried; the agent then takes the
// next snapshot as it comes.

// FloorFile is the file, in the agent's data directory, that keeps the
// highest versions of the control plane's state the agent accepted.
const FloorFile = "floor.json"

// maxFloorBytes bounds what the agent reads of FloorFile.
const maxFloorBytes = 1 << 20

// maxCarried bounds the revoked identities and serials the floor carries
// across a restore, maxCarriedLen each one and maxTagLen the tag of each,
// so that FloorFile stays within maxFloorBytes.
const (
	maxCarried    = api.MaxCarriedReport
	maxCarriedLen = 256
	maxTagLen     = 64
)

// maxRevokedGrants bounds the revoked grants the floor keeps, and
// maxGrantIDLen the ID of each, so that FloorFile stays within
// maxFloorBytes.
const (
	maxRevokedGrants = 256
	maxGrantIDLen    = 128
)

// Versions are the growing versions of the control plane's state.
type Versions struct {
	Epoch       int64 `json:"epoch,omitempty"` // store restore epoch, compared first
	Revision    int64 `json:"revision"`        // store revision of the latest frame
	Revocations int64 `json:"revocations"`     // revocation list's Version
	Policy      int64 `json:"policy"`          // policy's Version
}

// floorState is FloorFile's content.
type floorState struct {
	Versions
	RevokedGrants []revokedGrant `json:"revoked_grants,omitempty"`
	// GrantsClosedUntil is when the node takes grants active again after
	// one revoked beyond maxRevokedGrants.
	GrantsClosedUntil time.Time `json:"grants_closed_until,omitzero"`
	// Carried are the revocations held before a restore that the restored
	// control plane's list lacks (Version unused).
	Carried *identity.Revocations `json:"carried,omitempty"`
	// CarriedTags are the control plane's tags of the carried
	// revocations, by ID or serial (none for one carried before tags).
	CarriedTags map[string][]byte `json:"carried_tags,omitempty"`
}

// revokedGrant is a grant of this node seen revoked, and when it would
// have ended anyway.
type revokedGrant struct {
	ID    string    `json:"id"`
	Until time.Time `json:"until"`
}

// floor is the highest versions accepted, the revoked grants held, and the
// refusals counted.
type floor struct {
	path        string
	mu          sync.Mutex // guards v, grants, closedUntil, carried and carriedTags
	v           Versions
	grants      map[string]time.Time // revoked grant ID → when it would have ended
	closedUntil time.Time
	carried     identity.Revocations
	carriedTags map[string][]byte // tags of carried's IDs and serials
	refused     atomic.Int64
}

// loadFloor reads the floor kept in dir, leaving out the revoked grants
// that ended by now; none yet is the zero floor. A floor that does not read
// is an error: starting without it would take back whatever an old
// snapshot says.
func loadFloor(dir string, now time.Time) (*floor, error) {
	f := &floor{path: filepath.Join(dir, FloorFile), grants: map[string]time.Time{}}
	fh, err := os.Open(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFloorBytes+1))
	if err != nil {
		return nil, fmt.Errorf("agent: %s: %w", f.path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if len(data) > maxFloorBytes {
		err = fmt.Errorf("larger than %d bytes", maxFloorBytes)
	} else {
		var st floorState
		if err = dec.Decode(&st); err == nil && dec.More() {
			err = errors.New("data after the versions")
		} else if err == nil {
			err = f.set(st, now)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("agent: %s: %w (moat agent floor reset drops it)", f.path, err)
	}
	return f, nil
}

// set checks st and takes it, leaving out the revoked grants ended by now.
func (f *floor) set(st floorState, now time.Time) error {
	v := st.Versions
	if v.Epoch < 0 || v.Revision < 0 || v.Revocations < 0 || v.Policy < 0 {
		return errors.New("negative version")
	}
	if st.Carried != nil {
		if err := checkCarried(*st.Carried); err != nil {
			return fmt.Errorf("carried revocations: %w", err)
		}
		f.carried = carriedAt(*st.Carried, now)
		if err := checkTags(st.CarriedTags, *st.Carried); err != nil {
			return fmt.Errorf("carried revocations: %w", err)
		}
		f.carriedTags = tagsOf(st.CarriedTags, f.carried)
	} else if len(st.CarriedTags) > 0 {
		return errors.New("carried revocation tags without carried revocations")
	}
	if len(st.RevokedGrants) > maxRevokedGrants {
		return fmt.Errorf("%d revoked grants, more than %d", len(st.RevokedGrants), maxRevokedGrants)
	}
	for _, g := range st.RevokedGrants {
		if g.ID == "" || len(g.ID) > maxGrantIDLen {
			return fmt.Errorf("revoked grant ID of %d bytes (want 1 to %d)", len(g.ID), maxGrantIDLen)
		}
		if now.Before(g.Until) {
			f.grants[g.ID] = g.Until
		}
	}
	f.v, f.closedUntil = v, st.GrantsClosedUntil
	return nil
}

// saveLocked writes the floor to FloorFile.
func (f *floor) saveLocked() error {
	st := floorState{Versions: f.v, GrantsClosedUntil: f.closedUntil}
	if len(f.carried.IDs)+len(f.carried.Serials) > 0 || !f.carried.Pruned.IsZero() {
		st.Carried = &f.carried
		st.CarriedTags = f.carriedTags
	}
	for id, until := range f.grants {
		st.RevokedGrants = append(st.RevokedGrants, revokedGrant{ID: id, Until: until})
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return seal.WriteFileAtomic(f.path, data, 0o600)
}

// grantEnd is when g would have ended anyway: its expiry once active, the
// lapse of its request while pending.
func grantEnd(g api.Grant) time.Time {
	if g.PendingUntil.After(g.Expires) {
		return g.PendingUntil
	}
	return g.Expires
}

// admitGrant returns an error if g, shown not revoked, is a grant the
// floor holds revoked, or if the node takes no grant for now.
func (f *floor) admitGrant(g api.Grant, now time.Time) error {
	if !g.Revoked.IsZero() {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if until, ok := f.grants[g.ID]; ok && now.Before(until) {
		return fmt.Errorf("grant %s shown active, held revoked until %s: %w", g.ID, until.UTC().Format(time.RFC3339), errRollback)
	}
	if now.Before(f.closedUntil) {
		return fmt.Errorf("grant %s: more than %d revoked grants were held, so this node takes no grant until %s", g.ID, maxRevokedGrants, f.closedUntil.UTC().Format(time.RFC3339))
	}
	return nil
}

// revokeGrant keeps g, revoked, until it would have ended, leaving out
// the grants ended by now. Past maxRevokedGrants it closes the node to
// every grant until g would have ended, and says so.
func (f *floor) revokeGrant(g api.Grant, now time.Time) error {
	until := grantEnd(g)
	if g.Revoked.IsZero() || !now.Before(until) {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.grants[g.ID]; ok {
		return nil
	}
	for id, end := range f.grants {
		if !now.Before(end) {
			delete(f.grants, id)
		}
	}
	var full error
	switch {
	case len(g.ID) > maxGrantIDLen:
		full = fmt.Errorf("revoked grant ID of %d bytes, more than %d", len(g.ID), maxGrantIDLen)
	case len(f.grants) >= maxRevokedGrants:
		full = fmt.Errorf("revoked grant %s is one more than the %d this node keeps", g.ID, maxRevokedGrants)
	default:
		f.grants[g.ID] = until
	}
	if full != nil && until.After(f.closedUntil) {
		f.closedUntil = until
	}
	if err := f.saveLocked(); err != nil {
		return err
	}
	if full != nil {
		return fmt.Errorf("%w: this node takes no grant until %s", full, f.closedUntil.UTC().Format(time.RFC3339))
	}
	return nil
}

// errRollback is a frame older than what the agent holds.
var errRollback = errors.New("older than the state this agent holds")

// admit returns an error if u carries a version below the floor. A full
// snapshot is checked on its store revision too, which is read with quorum
// and so at least that of every change streamed before it; a single change
// is not, since it may be streamed after a snapshot that covered later
// changes.
func (f *floor) admit(u api.Update) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case u.Epoch < f.v.Epoch:
		return fmt.Errorf("store epoch %d, below %d: %w", u.Epoch, f.v.Epoch, errRollback)
	case u.Epoch > f.v.Epoch && !u.Full:
		return fmt.Errorf("a change at store epoch %d, above %d, before its snapshot: %w", u.Epoch, f.v.Epoch, errRollback)
	case u.Epoch > f.v.Epoch:
		return nil // a restored control plane: its versions start again
	case u.Full && u.Revision < f.v.Revision:
		return fmt.Errorf("snapshot at store revision %d, below %d: %w", u.Revision, f.v.Revision, errRollback)
	case u.Revocations != nil && u.Revocations.Version < f.v.Revocations:
		return fmt.Errorf("revocation list version %d, below %d: %w", u.Revocations.Version, f.v.Revocations, errRollback)
	case u.Policy != nil && u.Policy.Version < f.v.Policy:
		return fmt.Errorf("policy version %d, below %d: %w", u.Policy.Version, f.v.Policy, errRollback)
	}
	return nil
}

// epoch returns the floor's store epoch.
func (f *floor) epoch() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.v.Epoch
}

// raise moves the floor up to what u carries and keeps it on disk. A
// snapshot of a newer epoch (which enter took) sets it.
func (f *floor) raise(u api.Update) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.v
	if u.Epoch > v.Epoch {
		v = Versions{Epoch: u.Epoch}
	}
	v.Revision = max(v.Revision, u.Revision)
	if u.Revocations != nil {
		v.Revocations = max(v.Revocations, u.Revocations.Version)
	}
	if u.Policy != nil {
		v.Policy = max(v.Policy, u.Policy.Version)
	}
	if v == f.v {
		return nil
	}
	f.v = v
	return f.saveLocked()
}

// refuse counts a refused frame and logs the first refusal and then each
// power of two, so a source that keeps sending the past cannot fill the log.
func (a *Agent) refuse(err error) {
	n := a.floor.refused.Add(1)
	if n&(n-1) == 0 {
		a.log.Error("refusing control-plane state older than the one this node holds", "err", err, "refused", n,
			"if_deliberate", "if this control plane was put back on purpose without a newer store epoch (moat backup restore gives one), stop the agent and run: moat agent floor reset --data-dir "+a.cfg.DataDir)
	}
}

// RollbacksRefused returns how many frames the agent refused as older
// than the state it holds.
func (a *Agent) RollbacksRefused() int64 { return a.floor.refused.Load() }

// ErrNoFloor is ResetFloor's answer when the agent holds no floor.
var ErrNoFloor = errors.New("agent: no state floor kept")

// DroppedFloor is what ResetFloor dropped.
type DroppedFloor struct {
	Versions
	Grants  int // break-glass grants held revoked, ended or not
	Carried int // revoked identities and serials carried across a restore
}

// ResetFloor drops the floor kept in dataDir and returns what it held, so
// that the agent takes the control plane's next snapshot as it comes: for
// a control plane put back on purpose without a newer epoch than the
// node's (one of an earlier epoch, or rolled back by other means than moat
// backup restore), or to drop the revocations carried across a restore.
// It refuses while an agent runs on dataDir (it holds LockFile), and
// returns ErrNoFloor when there is none.
func ResetFloor(dataDir string) (DroppedFloor, error) {
	if _, err := os.Stat(filepath.Join(dataDir, nodeDir)); err != nil {
		return DroppedFloor{}, fmt.Errorf("agent: %s holds no node identity: %w", dataDir, err)
	}
	lock, err := lockDataDir(dataDir)
	if errors.Is(err, ErrRunning) {
		return DroppedFloor{}, fmt.Errorf("agent: the agent of %s is running (it holds %s); stop it first; nothing was changed",
			dataDir, filepath.Join(dataDir, nodeDir, LockFile))
	}
	if err != nil {
		return DroppedFloor{}, err
	}
	defer lock.Close()
	// Every revoked grant kept is counted, ended or not.
	f, err := loadFloor(dataDir, time.Time{})
	if err != nil {
		// A floor that does not read is dropped all the same.
		f = &floor{path: filepath.Join(dataDir, FloorFile)}
	}
	if err := os.Remove(f.path); errors.Is(err, os.ErrNotExist) {
		return DroppedFloor{}, ErrNoFloor
	} else if err != nil {
		return DroppedFloor{}, fmt.Errorf("agent: %w", err)
	}
	return DroppedFloor{Versions: f.v, Grants: len(f.grants), Carried: len(f.carried.IDs) + len(f.carried.Serials)}, nil
}

// enter takes u, a snapshot of a newer epoch than the floor's (admit let
// it through), against held, the revocation list the agent holds, and
// heldTags, the tags of the list the agent took last: the floor's
// versions become u's, and what held lists that u's list lacks is
// carried with its tag (from heldTags, or as carried before), leaving out
// the serials whose certificates ended by now. It
// returns how many revocations are carried, and refuses (changing
// nothing) when they are more than maxCarried or one is longer than
// maxCarriedLen.
func (f *floor) enter(u api.Update, held identity.Revocations, heldTags map[string][]byte, now time.Time) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if held.Version < f.v.Revocations {
		// The list the floor vouches for is gone (its state cache with
		// it): what to carry is not known.
		return 0, fmt.Errorf("store epoch %d: this node took revocation list version %d but holds version %d (its state cache was lost), so it cannot tell which revocations to carry; moat agent floor reset, with the agent stopped, takes the restored list as it is", u.Epoch, f.v.Revocations, held.Version)
	}
	var listed identity.Revocations
	if u.Revocations != nil {
		listed = *u.Revocations
	}
	var c identity.Revocations
	if held.Pruned.After(listed.Pruned) {
		c.Pruned = held.Pruned
	}
	for _, id := range held.IDs {
		if !slices.Contains(listed.IDs, id) && !slices.Contains(c.IDs, id) {
			c.IDs = append(c.IDs, id)
		}
	}
	lacking := identity.Revocations{Expires: held.Expires}
	for _, sn := range held.Serials {
		if !slices.Contains(listed.Serials, sn) && !slices.Contains(lacking.Serials, sn) {
			lacking.Serials = append(lacking.Serials, sn)
		}
	}
	kept := carriedAt(lacking, now)
	c.Serials, c.Expires = kept.Serials, kept.Expires
	if err := checkCarried(c); err != nil {
		return 0, fmt.Errorf("store epoch %d: of the revocations this node holds, those the restored list lacks: %w; moat agent floor reset, with the agent stopped, drops them", u.Epoch, err)
	}
	tags := map[string][]byte{}
	for _, k := range append(slices.Clone(c.IDs), c.Serials...) {
		if t, ok := heldTags[k]; ok {
			tags[k] = t
		} else if t, ok := f.carriedTags[k]; ok {
			tags[k] = t
		}
	}
	if err := checkTags(tags, c); err != nil {
		return 0, fmt.Errorf("store epoch %d: the tags of the revocations to carry: %w; moat agent floor reset, with the agent stopped, drops them", u.Epoch, err)
	}
	v := Versions{Epoch: u.Epoch, Revision: u.Revision, Revocations: listed.Version}
	if u.Policy != nil {
		v.Policy = u.Policy.Version
	}
	f.v, f.carried, f.carriedTags = v, c, tags
	return len(c.IDs) + len(c.Serials), f.saveLocked()
}

// carriedAt returns c without the serials whose certificates ended by
// now (a zero now keeps them all).
func carriedAt(c identity.Revocations, now time.Time) identity.Revocations {
	kept := identity.Revocations{IDs: c.IDs, Pruned: c.Pruned}
	for _, sn := range c.Serials {
		end, ok := c.Expires[sn]
		if ok && !now.IsZero() && !now.Before(end) {
			continue
		}
		kept.Serials = append(kept.Serials, sn)
		if ok {
			if kept.Expires == nil {
				kept.Expires = map[string]time.Time{}
			}
			kept.Expires[sn] = end
		}
	}
	return kept
}

// checkCarried bounds carried revocations.
func checkCarried(c identity.Revocations) error {
	if n := len(c.IDs) + len(c.Serials); n > maxCarried {
		return fmt.Errorf("%d revocations to carry, more than %d", n, maxCarried)
	}
	for _, s := range append(slices.Clone(c.IDs), c.Serials...) {
		if s == "" || len(s) > maxCarriedLen {
			return fmt.Errorf("a revocation of %d bytes (want 1 to %d)", len(s), maxCarriedLen)
		}
	}
	if len(c.Expires) > len(c.Serials) {
		return fmt.Errorf("%d expiries for %d serials", len(c.Expires), len(c.Serials))
	}
	return nil
}

// checkTags bounds the tags of c's revocations.
func checkTags(tags map[string][]byte, c identity.Revocations) error {
	for k, t := range tags {
		if !slices.Contains(c.IDs, k) && !slices.Contains(c.Serials, k) {
			return fmt.Errorf("a tag of %q, which is not carried", k)
		}
		if len(t) == 0 || len(t) > maxTagLen {
			return fmt.Errorf("a tag of %d bytes (want 1 to %d)", len(t), maxTagLen)
		}
	}
	return nil
}

// tagsOf returns the tags of c's revocations (those not carried any more
// left out).
func tagsOf(tags map[string][]byte, c identity.Revocations) map[string][]byte {
	out := map[string][]byte{}
	for _, k := range append(slices.Clone(c.IDs), c.Serials...) {
		if t, ok := tags[k]; ok {
			out[k] = t
		}
	}
	return out
}

// lacking returns the revocations the floor carries that listed lacks,
// each with its tag, as a report to the control plane; those carried
// without a tag (since before tags) are left out, and so are the serials
// whose certificates ended by now.
func (f *floor) lacking(listed identity.Revocations, now time.Time) api.CarriedReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	var rep api.CarriedReport
	if len(f.carriedTags) == 0 {
		return rep
	}
	in := make(map[string]bool, len(listed.IDs)+len(listed.Serials))
	for _, k := range listed.IDs {
		in[k] = true
	}
	for _, k := range listed.Serials {
		in[k] = true
	}
	for _, id := range f.carried.IDs {
		if t, ok := f.carriedTags[id]; ok && !in[id] {
			rep.Revocations = append(rep.Revocations, api.CarriedRevocation{ID: id, Tag: t})
		}
	}
	for _, sn := range f.carried.Serials {
		t, ok := f.carriedTags[sn]
		end := f.carried.Expires[sn]
		if !ok || in[sn] || !end.IsZero() && !now.Before(end) {
			continue
		}
		rep.Revocations = append(rep.Revocations, api.CarriedRevocation{Serial: sn, Expires: end, Tag: t})
	}
	return rep
}

// withCarried returns r with the revocations the floor carries added:
// the list the agent enforces.
func (f *floor) withCarried(r identity.Revocations) identity.Revocations {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.carried
	if len(c.IDs)+len(c.Serials) == 0 && !c.Pruned.After(r.Pruned) {
		return r
	}
	r.IDs = slices.Clone(r.IDs)
	for _, id := range c.IDs {
		if !slices.Contains(r.IDs, id) {
			r.IDs = append(r.IDs, id)
		}
	}
	r.Serials = slices.Clone(r.Serials)
	r.Expires = maps.Clone(r.Expires)
	for _, sn := range c.Serials {
		if slices.Contains(r.Serials, sn) {
			continue
		}
		r.Serials = append(r.Serials, sn)
		if end, ok := c.Expires[sn]; ok {
			if r.Expires == nil {
				r.Expires = map[string]time.Time{}
			}
			r.Expires[sn] = end
		}
	}
	if c.Pruned.After(r.Pruned) {
		r.Pruned = c.Pruned
	}
	return r
}
