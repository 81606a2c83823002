package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
)

// CapabilityStateless is the capability an IPFS connector declares in
// Describe when it keeps no state of its own (it drives an IPFS daemon that
// runs elsewhere), so that it can be swapped on a running peer.
const CapabilityStateless = "stateless"

// Reload applies the plugin sections of svc to the running plugins. For
// each kind whose section changed (plugin, config or executable):
//
//   - an allocator, and an IPFS connector whose running and new plugins both
//     declare the "stateless" capability, are swapped: the new plugin is
//     started and checked (kind, protocol version, Configure) beside the old
//     one, calls are switched over to it, and the old one is stopped once
//     its calls have ended (DrainTimeout at most). If the new plugin does not
//     start, the old one stays and the result says why;
//   - a consensus, a pin tracker and a connector that keeps state report
//     that a restart is needed.
//
// Reloads run one at a time. Other sections of svc are not applied.
func (s *Supervisor) Reload(ctx context.Context, svc *config.Service) []ReloadResult {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.mu.Lock()
	order := slices.Clone(s.order)
	s.mu.Unlock()
	out := make([]ReloadResult, 0, len(order))
	for _, k := range order {
		sl := s.slot(k)
		choice, err := svc.Plugin(k)
		if err != nil {
			out = append(out, ReloadResult{Kind: k, Result: ReloadFailed, Name: sl.name(), Error: err.Error()})
			continue
		}
		out = append(out, sl.reload(ctx, choice))
	}
	return out
}

func (s *slot) reload(ctx context.Context, choice config.PluginChoice) ReloadResult {
	s.mu.Lock()
	old, last, stopped := s.choice, s.last, s.stopped
	s.mu.Unlock()
	res := ReloadResult{Kind: s.kind, Name: old.Name}
	if sameChoice(old, choice) {
		res.Result = ReloadUnchanged
		return res
	}
	res.Requested = choice.Name
	restartNeeded := func(why string) ReloadResult {
		res.Result = ReloadRestartNeeded
		res.Error = fmt.Sprintf("%s: restart the peer to apply the change", why)
		return res
	}
	failed := func(err error) ReloadResult {
		res.Result = ReloadFailed
		res.Error = err.Error()
		return res
	}
	switch {
	case stopped:
		return failed(fmt.Errorf("plugin %s %q is stopped", s.kind, old.Name))
	case s.kind == core.KindAllocator:
	case s.kind == core.KindIPFSConnector:
		if last == nil || !slices.Contains(last.p.Desc.Capabilities, CapabilityStateless) {
			return restartNeeded(fmt.Sprintf("the %s %q keeps state (it does not declare the %q capability)", s.kind, old.Name, CapabilityStateless))
		}
	default:
		return restartNeeded(fmt.Sprintf("a %s keeps state and cannot be swapped on a running peer", s.kind))
	}

	s.opMu.Lock()
	defer s.opMu.Unlock()
	env := s.sup.env(choice)
	p, err := s.sup.launcher.Launch(s.sup.ctx, choice, env, s.sup.host)
	if err != nil {
		return failed(err)
	}
	if s.kind == core.KindIPFSConnector && !slices.Contains(p.Desc.Capabilities, CapabilityStateless) {
		p.Stop(ctx)
		return restartNeeded(fmt.Sprintf("the new %s %q keeps state (it does not declare the %q capability)", s.kind, choice.Name, CapabilityStateless))
	}

	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		p.Stop(ctx)
		return failed(fmt.Errorf("plugin %s %q is stopped", s.kind, old.Name))
	}
	prev := s.cur
	s.choice, s.env = choice, env
	s.restarts, s.lastErr = 0, ""
	s.install(p)
	s.mu.Unlock()
	s.logger(choice.Name).Info("plugin swapped", "kind", s.kind, "name", choice.Name, "previous", old.Name,
		"version", p.Desc.Version, "pid", p.Pid, "path", p.Path())

	if prev != nil {
		s.drain(prev)
		prev.p.Stop(ctx)
	}
	res.Result = ReloadSwapped
	res.Name = choice.Name
	res.Previous = old.Name
	return res
}

// drain waits until no call uses inst any more, at most DrainTimeout.
func (s *slot) drain(inst *instance) {
	deadline := time.Now().Add(s.sup.opts.DrainTimeout)
	for inst.calls.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// sameChoice reports whether two choices run the same plugin with the same
// configuration. Configs are compared as JSON values.
func sameChoice(a, b config.PluginChoice) bool {
	if a.Kind != b.Kind || a.Name != b.Name || !reflect.DeepEqual(a.External, b.External) {
		return false
	}
	return sameJSON(a.Config, b.Config)
}

func sameJSON(a, b json.RawMessage) bool {
	norm := func(r json.RawMessage) []byte {
		r = bytes.TrimSpace(r)
		if len(r) == 0 {
			return []byte("null") // an absent section means the defaults
		}
		return r
	}
	a, b = norm(a), norm(b)
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
