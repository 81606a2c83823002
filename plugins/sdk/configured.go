package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
)

// Configured is the base of a plugin whose only state is its
// configuration, an allocator for instance. Embedded in the plugin's type,
// it implements Describe (answering Description), Configure (decoding the
// section with Parse, which also validates it; the host and environment
// are not kept) and Close (which releases nothing); the plugin's calls read
// the configuration with Config.
//
//	type Allocator struct{ sdk.Configured[Config] }
//
//	func New() *Allocator {
//		return &Allocator{sdk.Configured[Config]{Description: desc, Parse: ParseConfig}}
//	}
//
//	func (a *Allocator) Allocate(ctx context.Context, req sdk.AllocateRequest) ([]sdk.AllocateResult, error) {
//		cfg, err := a.Config()
//		if err != nil {
//			return nil, err
//		}
//		...
//	}
//
// A later Configure replaces the configuration for the calls that start
// after it; a failed one keeps the previous configuration.
type Configured[C any] struct {
	Description Description
	Parse       func(json.RawMessage) (C, error)

	cfg atomic.Pointer[C]
}

// Describe answers p.Description.
func (p *Configured[C]) Describe(context.Context) (Description, error) { return p.Description, nil }

// Configure decodes raw with p.Parse and keeps the result.
func (p *Configured[C]) Configure(_ context.Context, raw json.RawMessage, _ Environment, _ Host) error {
	cfg, err := p.Parse(raw)
	if err != nil {
		return err
	}
	p.cfg.Store(&cfg)
	return nil
}

// Close releases nothing.
func (p *Configured[C]) Close(context.Context) error { return nil }

// Config returns the configuration of the last successful Configure, or an
// error naming the plugin before the first one.
func (p *Configured[C]) Config() (C, error) {
	if cfg := p.cfg.Load(); cfg != nil {
		return *cfg, nil
	}
	var zero C
	return zero, fmt.Errorf("%s.%s: called before Configure", p.Description.Kind, p.Description.Name)
}
