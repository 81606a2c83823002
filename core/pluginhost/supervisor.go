package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
)

// The supervisor keeps one plugin of each kind running for the core.
//
// The core never holds a plugin client: it holds the proxy of the kind
// (Supervisor.Consensus, Allocator, PinTracker, IPFSConnector), which
// forwards every call to the plugin running at that moment. A slot per kind
// owns the running instance; a watcher goroutine per slot notices when the
// process exits (it polls go-plugin's client) or when a call reports it dead
// or hung, kills what is left of it and starts the same plugin again, with
// the same config, environment and host, after an exponential backoff. A
// live swap (Reload) starts the new plugin beside the old one, checks it and
// only then points the slot at it. See proxy.go for what happens to calls.

// State is the state of a supervised plugin.
type State = core.PluginState

// The states of a supervised plugin.
const (
	StateRunning    = core.PluginRunning
	StateRestarting = core.PluginRestarting
	StateFailed     = core.PluginFailed
	StateStopped    = core.PluginStopped
)

// Options tune a Supervisor. Zero values take the defaults.
type Options struct {
	// CallTimeout bounds every unary call to a plugin (default 1m). A plugin
	// that has not answered a call within it is deemed hung, killed and
	// restarted. Streams are not bounded; see WithCallTimeout.
	CallTimeout time.Duration
	// RestartWait is how long a call waits for a plugin that is being
	// restarted before it fails (default 15s).
	RestartWait time.Duration
	// BackoffBase is the delay before the first restart after a failure
	// (default 100ms); it doubles with each failure in a row, up to
	// BackoffMax (default 30s).
	BackoffBase, BackoffMax time.Duration
	// StablePeriod is how long a plugin must have run for the backoff to
	// start again from BackoffBase (default 1m).
	StablePeriod time.Duration
	// PollInterval is how often the watcher checks that the process is
	// alive (default 100ms).
	PollInterval time.Duration
	// DrainTimeout bounds how long a swap waits for the calls still running
	// on the plugin it replaces before stopping it (default 10s).
	DrainTimeout time.Duration
}

func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.CallTimeout, time.Minute)
	def(&o.RestartWait, 15*time.Second)
	def(&o.BackoffBase, 100*time.Millisecond)
	def(&o.BackoffMax, 30*time.Second)
	def(&o.StablePeriod, time.Minute)
	def(&o.PollInterval, 100*time.Millisecond)
	def(&o.DrainTimeout, 10*time.Second)
	return o
}

// Supervisor starts the plugin of each kind, keeps it running and hands the
// core a stable proxy per kind.
type Supervisor struct {
	launcher *Launcher
	host     core.Host
	env      func(config.PluginChoice) core.Environment
	logger   hclog.Logger
	opts     Options

	ctx    context.Context // cancelled by Stop: aborts launches in progress
	cancel context.CancelFunc

	mu      sync.Mutex
	slots   map[core.Kind]*slot
	order   []core.Kind
	stopped bool

	reloadMu sync.Mutex
}

// NewSupervisor returns a supervisor that launches plugins with l, hands
// them host and the environment env returns for each (the data folder
// depends on the plugin's name).
func NewSupervisor(l *Launcher, host core.Host, env func(config.PluginChoice) core.Environment, opts Options) *Supervisor {
	ctx, cancel := context.WithCancel(context.Background())
	logger := l.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Supervisor{
		launcher: l,
		host:     host,
		env:      env,
		logger:   logger,
		opts:     opts.withDefaults(),
		ctx:      ctx,
		cancel:   cancel,
		slots:    make(map[core.Kind]*slot),
	}
}

// Start launches the plugin chosen for its kind and supervises it from then
// on. Start kinds in core.Kinds order: a plugin may call back into the kinds
// started before it.
func (s *Supervisor) Start(ctx context.Context, choice config.PluginChoice) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return errors.New("the plugin supervisor is stopped")
	}
	if _, ok := s.slots[choice.Kind]; ok {
		s.mu.Unlock()
		return fmt.Errorf("plugin %s %q: a plugin of that kind is already running", choice.Kind, choice.Name)
	}
	s.mu.Unlock()

	env := s.env(choice)
	p, err := s.launcher.Launch(ctx, choice, env, s.host)
	if err != nil {
		return err
	}
	sl := &slot{
		sup:      s,
		kind:     choice.Kind,
		choice:   choice,
		env:      env,
		changed:  make(chan struct{}),
		failures: make(chan failure, 16),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	sl.install(p)

	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		p.Stop(ctx)
		return errors.New("the plugin supervisor is stopped")
	}
	if _, ok := s.slots[choice.Kind]; ok {
		s.mu.Unlock()
		p.Stop(ctx)
		return fmt.Errorf("plugin %s %q: a plugin of that kind is already running", choice.Kind, choice.Name)
	}
	s.slots[choice.Kind] = sl
	s.order = append(s.order, choice.Kind)
	s.mu.Unlock()
	go sl.watch()
	return nil
}

func (s *Supervisor) slot(k core.Kind) *slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slots[k]
}

// Plugins describes every supervised plugin, in start order.
func (s *Supervisor) Plugins() []Info {
	s.mu.Lock()
	slots := make([]*slot, 0, len(s.order))
	for _, k := range s.order {
		slots = append(slots, s.slots[k])
	}
	s.mu.Unlock()
	out := make([]Info, 0, len(slots))
	for _, sl := range slots {
		out = append(out, sl.info())
	}
	return out
}

// Stop stops supervising and stops every plugin, in the reverse of start
// order. Calls made afterwards fail.
func (s *Supervisor) Stop(ctx context.Context) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	slots := make([]*slot, 0, len(s.order))
	for i := len(s.order) - 1; i >= 0; i-- {
		slots = append(slots, s.slots[s.order[i]])
	}
	s.mu.Unlock()

	s.cancel()
	for _, sl := range slots {
		close(sl.stop)
	}
	for _, sl := range slots {
		<-sl.done
	}
	for _, sl := range slots {
		sl.shutdown(ctx)
	}
}

// slot owns the running plugin of one kind.
type slot struct {
	sup  *Supervisor
	kind core.Kind

	mu       sync.Mutex
	choice   config.PluginChoice
	env      core.Environment
	cur      *instance // nil while the plugin is down
	last     *instance // the latest instance, running or not
	state    State
	restarts int
	lastErr  string
	// changed is closed, and replaced, whenever cur or state changes.
	changed chan struct{}
	stopped bool

	// opMu serialises what starts a plugin for this slot: restarts and
	// swaps.
	opMu sync.Mutex

	failures chan failure
	stop     chan struct{} // closed by Supervisor.Stop
	done     chan struct{} // closed when the watcher has returned
}

// instance is one plugin process of a slot.
type instance struct {
	p        *Plugin
	calls    atomic.Int64 // calls and streams using it
	reported atomic.Bool  // a failure of it was reported to the watcher
}

func (i *instance) release() { i.calls.Add(-1) }

// failure reports a plugin instance found dead or hung by a call.
type failure struct {
	inst   *instance
	reason string
	hung   bool // the process may be alive
}

// install makes p the running instance. Callers other than Start hold
// s.mu.
func (s *slot) install(p *Plugin) *instance {
	inst := &instance{p: p}
	s.cur, s.last = inst, inst
	s.state = StateRunning
	s.broadcastLocked()
	return inst
}

func (s *slot) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *slot) logger(name string) hclog.Logger {
	return s.sup.logger.Named(string(s.kind) + "." + name)
}

func (s *slot) current() *instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *slot) name() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.choice.Name
}

// report tells the watcher that a call found inst dead or hung. Only the
// first report of an instance is sent.
func (s *slot) report(inst *instance, reason string, hung bool) {
	if !inst.reported.CompareAndSwap(false, true) {
		return
	}
	select {
	case s.failures <- failure{inst, reason, hung}:
	default:
		// Reports are pending already; the watcher also polls the process.
	}
}

// watch restarts the plugin whenever it dies or is reported dead or hung,
// until the supervisor stops.
func (s *slot) watch() {
	defer close(s.done)
	tick := time.NewTicker(s.sup.opts.PollInterval)
	defer tick.Stop()
	crashes := 0 // failures in a row, for the backoff
	for {
		var f failure
		select {
		case <-s.stop:
			return
		case f = <-s.failures:
		case <-tick.C:
			cur := s.current()
			if cur == nil || !cur.p.Exited() {
				continue
			}
			f = failure{inst: cur, reason: exitReason(cur.p)}
		}
		if !s.down(f) {
			continue
		}
		if time.Since(f.inst.p.Started) >= s.sup.opts.StablePeriod {
			crashes = 0
		}
		crashes = s.restart(f, crashes)
	}
}

// exitReason describes how a plugin process ended. go-plugin has reaped the
// process once Exited is true, so its state can be read.
func exitReason(p *Plugin) string {
	if p.cmd != nil && p.cmd.ProcessState != nil {
		return exitPrefix + " (" + p.cmd.ProcessState.String() + ")"
	}
	return exitPrefix
}

const exitPrefix = "the plugin process exited"

// down takes inst out of service and kills it. It reports false when inst
// is no longer the running instance (already restarted or swapped).
func (s *slot) down(f failure) bool {
	s.mu.Lock()
	if s.cur != f.inst || s.stopped {
		s.mu.Unlock()
		return false
	}
	s.cur = nil
	s.state = StateRestarting
	name := s.choice.Name
	s.broadcastLocked()
	s.mu.Unlock()
	if !f.hung && !strings.HasPrefix(f.reason, exitPrefix) {
		// A call saw the connection break: the process is most likely
		// dying; say how it ended if that is known soon.
		for i := 0; i < 20 && !f.inst.p.Exited(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if f.inst.p.Exited() {
			f.reason = exitReason(f.inst.p) + "; " + f.reason
		}
	}
	s.mu.Lock()
	s.lastErr = f.reason
	s.mu.Unlock()
	s.logger(name).Warn("plugin failed; restarting it", "kind", s.kind, "name", name, "pid", f.inst.p.Pid, "reason", f.reason)
	f.inst.p.Kill()
	return true
}

// restart starts the slot's plugin again, with backoff, until it runs, a
// swap has installed another one or the supervisor stops. It returns the
// updated count of failures in a row.
func (s *slot) restart(f failure, crashes int) int {
	opts := s.sup.opts
	for {
		delay := backoff(opts.BackoffBase, crashes, opts.BackoffMax)
		select {
		case <-s.stop:
			return crashes
		case <-time.After(delay):
		}
		crashes++

		s.opMu.Lock()
		s.mu.Lock()
		if s.cur != nil || s.stopped {
			// A swap installed a plugin meanwhile.
			s.mu.Unlock()
			s.opMu.Unlock()
			return crashes
		}
		choice, env := s.choice, s.env
		s.mu.Unlock()

		p, err := s.sup.launcher.Launch(s.sup.ctx, choice, env, s.sup.host)
		if err == nil {
			s.mu.Lock()
			if s.stopped {
				s.mu.Unlock()
				s.opMu.Unlock()
				p.Stop(context.Background())
				return crashes
			}
			s.install(p)
			s.restarts++
			restarts := s.restarts
			s.mu.Unlock()
			s.opMu.Unlock()
			s.logger(choice.Name).Info("plugin restarted", "kind", s.kind, "name", choice.Name,
				"pid", p.Pid, "restarts", restarts, "reason", f.reason)
			return crashes
		}
		s.opMu.Unlock()

		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return crashes
		}
		s.state = StateFailed
		s.lastErr = err.Error()
		s.broadcastLocked()
		s.mu.Unlock()
		s.logger(choice.Name).Error("plugin restart failed", "kind", s.kind, "name", choice.Name,
			"attempt", crashes, "retry_in", backoff(opts.BackoffBase, crashes, opts.BackoffMax), "error", err)
	}
}

// backoff returns base doubled n times, at most limit.
func backoff(base time.Duration, n int, limit time.Duration) time.Duration {
	d := base
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// shutdown stops the slot's plugin for good.
func (s *slot) shutdown(ctx context.Context) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	cur := s.cur
	s.cur = nil
	s.stopped = true
	s.state = StateStopped
	s.broadcastLocked()
	s.mu.Unlock()
	if cur != nil {
		cur.p.Stop(ctx)
	}
}

// acquire returns the running instance, waiting (at most RestartWait, and
// never past ctx) while the plugin is down. When after is not nil, an
// instance other than after is waited for: after is the one a call just
// found dead. The caller must release the instance.
func (s *slot) acquire(ctx context.Context, op string, after *instance) (*instance, error) {
	var timer *time.Timer
	for {
		s.mu.Lock()
		if s.stopped {
			name := s.choice.Name
			s.mu.Unlock()
			return nil, &UnavailableError{Kind: s.kind, Name: name, Op: op, Stopped: true}
		}
		if cur := s.cur; cur != nil && cur != after {
			cur.calls.Add(1)
			s.mu.Unlock()
			return cur, nil
		}
		changed, name, lastErr := s.changed, s.choice.Name, s.lastErr
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(s.sup.opts.RestartWait)
			defer timer.Stop()
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, &UnavailableError{Kind: s.kind, Name: name, Op: op, Err: ctx.Err()}
		case <-timer.C:
			err := fmt.Errorf("not back after %s", s.sup.opts.RestartWait)
			if lastErr != "" {
				err = fmt.Errorf("not back after %s (last error: %s)", s.sup.opts.RestartWait, lastErr)
			}
			return nil, &UnavailableError{Kind: s.kind, Name: name, Op: op, Err: err}
		}
	}
}

// info describes the slot for GET /plugins.
func (s *slot) info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := Info{
		Kind:         s.kind,
		Name:         s.choice.Name,
		Path:         pathOf(s.choice),
		State:        s.state,
		Restarts:     s.restarts,
		LastError:    s.lastErr,
		Uptime:       "0s",
		Capabilities: []string{},
	}
	if s.last != nil {
		d := s.last.p.Desc
		i.Version = d.Version
		i.ProtocolVersion = s.last.p.Protocol
		if d.Capabilities != nil {
			i.Capabilities = append(i.Capabilities, d.Capabilities...)
		}
	}
	if s.cur != nil {
		i.Pid = s.cur.p.Pid
		i.StartedAt = s.cur.p.Started
		i.Uptime = time.Since(s.cur.p.Started).Round(time.Millisecond).String()
	}
	return i
}

func pathOf(c config.PluginChoice) string {
	if c.External != nil {
		return c.External.Path
	}
	return "built-in"
}
