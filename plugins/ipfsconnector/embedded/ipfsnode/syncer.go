package ipfsnode

import "sync"

// syncer runs a flush function on behalf of concurrent callers, sharing
// flushes between them (group commit): a caller waits for a flush that
// started after its call, and every caller arriving while a flush runs is
// served by the single next one.
type syncer struct {
	flush func() error

	mu      sync.Mutex
	running bool
	next    *syncRound // round to run once the running one ends
}

// syncRound is one run of the flush function.
type syncRound struct {
	done chan struct{}
	err  error
}

func newSyncer(flush func() error) *syncer {
	return &syncer{flush: flush}
}

// sync returns once a flush started after the call has completed, with
// that flush's error.
func (s *syncer) sync() error {
	s.mu.Lock()
	if s.next == nil {
		s.next = &syncRound{done: make(chan struct{})}
	}
	r := s.next
	if !s.running {
		s.running = true
		s.next = nil
		go s.run(r)
	}
	s.mu.Unlock()
	<-r.done
	return r.err
}

// run runs r, then the rounds requested meanwhile, until none is pending.
func (s *syncer) run(r *syncRound) {
	for r != nil {
		r.err = s.flush()
		close(r.done)
		s.mu.Lock()
		r = s.next
		s.next = nil
		if r == nil {
			s.running = false
		}
		s.mu.Unlock()
	}
}
