package raftstore

import (
	"context"
	"sync"
)

// Applied is a batch of operations applied to the map by the log entry at
// Index, as delivered to subscribers.
//
// A value with a non-nil Err is the last one on its channel (which is then
// closed): the subscriber missed or will miss changes (ErrSubscriberLagged,
// ErrStateRestored) or the Store was closed (ErrClosed). Index and Ops are
// then unset.
//
// Ops are shared between subscribers and with the store: treat them as
// read-only.
type Applied struct {
	Index uint64
	Ops   []Op
	Err   error
}

// subscriber is one subscription. Its channel has one slot more than its
// buffer, reserved for the final error value, so that sends never block.
type subscriber struct {
	ch     chan Applied
	buffer int
	done   chan struct{} // closed when the subscription ends
}

// subscriptions is the set of subscribers. publish is called from the FSM
// goroutine; every send and close happens under mu.
type subscriptions struct {
	mu     sync.Mutex
	buffer int
	subs   map[*subscriber]struct{}
	closed bool
}

func newSubscriptions(buffer int) *subscriptions {
	return &subscriptions{buffer: buffer, subs: make(map[*subscriber]struct{})}
}

// add registers a subscription, ended when ctx is done.
func (s *subscriptions) add(ctx context.Context) <-chan Applied {
	sub := &subscriber{
		ch:     make(chan Applied, s.buffer+1),
		buffer: s.buffer,
		done:   make(chan struct{}),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sub.ch <- Applied{Err: ErrClosed}
		close(sub.ch)
		return sub.ch
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()

	go func() {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			if _, ok := s.subs[sub]; ok {
				s.removeLocked(sub)
			}
			s.mu.Unlock()
		case <-sub.done:
		}
	}()
	return sub.ch
}

// removeLocked ends sub without a final value.
func (s *subscriptions) removeLocked(sub *subscriber) {
	delete(s.subs, sub)
	close(sub.done)
	close(sub.ch)
}

// endLocked ends sub with a final error value.
func (s *subscriptions) endLocked(sub *subscriber, err error) {
	sub.ch <- Applied{Err: err} // the reserved slot: never blocks
	s.removeLocked(sub)
}

// publish sends a to every subscriber, dropping those whose buffer is full.
func (s *subscriptions) publish(a Applied) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		if len(sub.ch) >= sub.buffer {
			s.endLocked(sub, ErrSubscriberLagged)
			continue
		}
		sub.ch <- a
	}
}

// closeAll ends every subscription with err. With ErrClosed, later
// subscriptions are refused too.
func (s *subscriptions) closeAll(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		s.endLocked(sub, err)
	}
	if err == ErrClosed {
		s.closed = true
	}
}
