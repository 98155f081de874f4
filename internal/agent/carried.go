package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"moat/internal/api"
)

// reportCarried reports to the control plane the revocations the floor
// carries across a restore that its list lacks (floor.lacking), so that
// the restored control plane applies them again (it takes those it tagged
// itself, and refuses a report with any other). It reports once at each
// restore epoch it takes, carrying something or not (the restored
// control plane holds the credentials it signs until the agents of its
// nodes have reported), and after each frame that leaves the list
// lacking some, once for each list: a report refused is not sent again
// until the list changes, one that did not reach the control plane is
// sent again with backoff.
func (a *Agent) reportCarried(ctx context.Context) error {
	var sent string
	var reported int64 // the epoch last reported at
	fails := 0
	for {
		next := a.updates.C()
		a.mu.RLock()
		listed, epoch := a.state.listed, a.state.epoch
		live := a.live
		a.mu.RUnlock()
		rep := a.floor.lacking(listed, a.cfg.Now())
		key := fmt.Sprint(epoch, "/", listed.Version, "/", len(rep.Revocations))
		var retry <-chan time.Time
		due := len(rep.Revocations) > 0 && key != sent || epoch > 0 && epoch != reported
		if live && due {
			var res api.CarriedResult
			err := a.api().Call(ctx, http.MethodPost, api.PathNodeCarried, rep, &res)
			var se *api.StatusError
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.As(err, &se) && se.Code == http.StatusNotFound:
				sent, reported, fails = key, epoch, 0
				a.log.Warn("the control plane takes no report of the revocations carried across a restore (a server older than this agent); they stay enforced here", "carried", len(rep.Revocations))
			case errors.As(err, &se) && se.Code/100 == 4:
				sent, reported, fails = key, epoch, 0
				a.log.Error("the control plane refused the revocations this node carries across a restore; they stay enforced here", "carried", len(rep.Revocations), "err", err)
			case err != nil:
				fails++
				a.log.Warn("revocations carried across a restore not reported; trying again", "carried", len(rep.Revocations), "err", err)
				retry = a.cfg.After(a.backoff(fails))
			default:
				sent, reported, fails = key, epoch, 0
				a.log.Info("reported the revocations this node carries across a restore", "epoch", epoch, "carried", len(rep.Revocations), "applied", res.Applied)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-next:
		case <-retry:
		}
	}
}
