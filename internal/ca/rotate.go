package ca

import (
	"fmt"
	"time"
)

// Phase names where a root rotation stands.
type Phase string

const (
	PhaseStable   Phase = "stable"   // one authority
	PhasePrepared Phase = "prepared" // new root published, old one signs
	PhaseActive   Phase = "active"   // new root signs, old one still trusted
)

// Phase reports where a rotation stands.
func (ca *CA) Phase() Phase {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return ca.phaseLocked()
}

func (ca *CA) phaseLocked() Phase {
	switch {
	case len(ca.state.Authorities) == 1:
		return PhaseStable
	case ca.state.Active == 0:
		return PhasePrepared
	default:
		return PhaseActive
	}
}

// Prepare makes a new root and intermediate and adds the root to the bundle;
// the current intermediate keeps signing. Agents must receive the new bundle
// before Activate, so that SVIDs from either root verify everywhere.
func (ca *CA) Prepare() error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if ca.phaseLocked() != PhaseStable {
		return ErrRotationActive
	}
	a, err := ca.newAuthority()
	if err != nil {
		return err
	}
	ca.state.Authorities = append(ca.state.Authorities, a)
	ca.refreshTrust()
	return nil
}

// Activate makes the prepared authority sign new SVIDs.
func (ca *CA) Activate() error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if ca.phaseLocked() != PhasePrepared {
		return ErrNoPrepared
	}
	ca.state.Active = 1
	return nil
}

// Retire removes the old root from the bundle. It refuses while an SVID the
// old authority signed may still be valid, unless force is set.
func (ca *CA) Retire(force bool) error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if ca.phaseLocked() != PhaseActive {
		return ErrNothingRetire
	}
	old := ca.state.Authorities[0]
	if now := ca.now(); !force && now.Before(old.LastExpiry) {
		return fmt.Errorf("%w until %s (%s from now); renewals under the new root replace them, or pass --force",
			ErrOldRootLive, old.LastExpiry.UTC().Format(time.RFC3339), old.LastExpiry.Sub(now).Round(time.Second))
	}
	ca.state.Authorities = ca.state.Authorities[1:]
	ca.state.Active = 0
	ca.refreshTrust()
	return nil
}

// IntermediateDue reports whether the signing intermediate should be
// replaced: less than a third of its life is left, the root key is held
// here, and the root outlives it, so that a new intermediate under the
// same root (RenewIntermediate) ends later. Every certificate the CA
// signs ends by its intermediate's end, so an intermediate nobody replaces
// stops every issuance the day it expires.
func (ca *CA) IntermediateDue() bool {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	a := ca.state.Authorities[ca.state.Active]
	in := a.Intermediate
	left := in.NotAfter.Sub(ca.now())
	return a.RootKey != nil && a.Root.NotAfter.After(in.NotAfter) && left < in.NotAfter.Sub(in.NotBefore)/3
}

// RenewIntermediate makes a new intermediate and key under the signing
// authority's root, which sign from then on. The bundle does not change:
// certificates the previous intermediate signed carry it in their chains
// and verify until they end.
func (ca *CA) RenewIntermediate() error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	a := ca.state.Authorities[ca.state.Active]
	if a.RootKey == nil {
		return ErrRootKeyAbsent
	}
	inter, key, err := ca.newIntermediate(a.Root, a.RootKey)
	if err != nil {
		return err
	}
	a.Intermediate, a.InterKey = inter, key
	return nil
}
