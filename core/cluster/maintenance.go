package cluster

import (
	"context"
	"time"

	"github.com/pincluster/pincluster/core"
)

// runMaintenance periodically re-queues failed pins (pin_recover_interval)
// and removes expired pins from the pinset (state_sync_interval).
func (c *Cluster) runMaintenance(ctx context.Context) {
	recoverEvery, syncEvery := c.cfg.PinRecoverInterval.D(), c.cfg.StateSyncInterval.D()
	var recoverTick, syncTick <-chan time.Time
	if recoverEvery > 0 {
		t := time.NewTicker(recoverEvery)
		defer t.Stop()
		recoverTick = t.C
	}
	if syncEvery > 0 {
		t := time.NewTicker(syncEvery)
		defer t.Stop()
		syncTick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-recoverTick:
			n := 0
			for _, err := range c.tracker().RecoverAll(ctx) {
				if err != nil {
					c.logger.Warn("periodic recover failed", "error", err)
					break
				}
				n++
			}
			if n > 0 {
				c.logger.Info("re-queued failed pins", "count", n)
			}
		case <-syncTick:
			c.unpinExpired(ctx, time.Now())
		}
	}
}

// unpinExpired removes every pin whose expire_at has passed.
func (c *Cluster) unpinExpired(ctx context.Context, now time.Time) {
	var expired []core.PinOp
	for p, err := range c.consensus().ListPins(ctx) {
		if err != nil {
			c.logger.Warn("listing the pinset for expired pins failed", "error", err)
			return
		}
		if !p.ExpireAt.IsZero() && p.ExpireAt.Before(now) {
			expired = append(expired, core.PinOp{Remove: true, Pin: core.Pin{Cid: p.Cid}})
		}
	}
	if len(expired) == 0 {
		return
	}
	if err := c.consensus().Commit(ctx, expired); err != nil {
		c.logger.Warn("unpinning expired pins failed", "count", len(expired), "error", err)
		return
	}
	c.logger.Info("unpinned expired pins", "count", len(expired))
}
