package network

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// saveDelay coalesces the address changes of a burst of connections into
// one write of the peerstore file.
const saveDelay = 200 * time.Millisecond

// addrBook is the set of cluster peer addresses the host remembers across
// restarts. It is persisted as IPFS Cluster's peerstore file: one multiaddr
// ending with /p2p/<id> per line. Blank lines and lines starting with # are
// ignored when loading; an invalid line is logged and skipped.
type addrBook struct {
	path   string
	self   peer.ID
	logger hclog.Logger

	mu    sync.Mutex
	addrs map[peer.ID][]ma.Multiaddr
	// forgotten are the peers removed from the book: what identify tells
	// of them is not learnt again until they are added explicitly.
	forgotten map[peer.ID]bool
	// written is the content last read or written, so that an unchanged
	// book is not rewritten.
	written []byte
	dirty   chan struct{}
}

func newAddrBook(path string, self peer.ID, logger hclog.Logger) *addrBook {
	return &addrBook{
		path:      path,
		self:      self,
		logger:    logger,
		addrs:     make(map[peer.ID][]ma.Multiaddr),
		forgotten: make(map[peer.ID]bool),
		dirty:     make(chan struct{}, 1),
		// An empty book is not written over a missing file.
		written: []byte{},
	}
}

// load reads the peerstore file; a missing file is an empty book.
func (b *addrBook) load() error {
	if b.path == "" {
		return nil
	}
	data, err := os.ReadFile(b.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("network: reading the peerstore: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		a, err := ma.NewMultiaddr(line)
		if err == nil {
			var ai *peer.AddrInfo
			if ai, err = peer.AddrInfoFromP2pAddr(a); err == nil {
				if ai.ID != b.self {
					b.addrs[ai.ID] = appendNew(b.addrs[ai.ID], ai.Addrs...)
				}
				continue
			}
		}
		b.logger.Warn("ignoring an invalid peerstore line", "file", b.path, "line", n, "error", err)
	}
	b.written = b.encodeLocked()
	return nil
}

// snapshot returns a copy of the book.
func (b *addrBook) snapshot() map[peer.ID][]ma.Multiaddr {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[peer.ID][]ma.Multiaddr, len(b.addrs))
	for p, as := range b.addrs {
		out[p] = slices.Clone(as)
	}
	return out
}

// add adds addresses of p.
func (b *addrBook) add(p peer.ID, addrs []ma.Multiaddr) {
	if p == b.self {
		return
	}
	b.mu.Lock()
	b.addrs[p] = appendNew(b.addrs[p], addrs...)
	delete(b.forgotten, p)
	b.mu.Unlock()
	b.changed()
}

// replace makes addrs the addresses of p and returns those it drops. It
// does nothing (ok is false) for self and for a forgotten peer.
func (b *addrBook) replace(p peer.ID, addrs []ma.Multiaddr) (stale []ma.Multiaddr, ok bool) {
	if p == b.self {
		return nil, false
	}
	b.mu.Lock()
	if b.forgotten[p] {
		b.mu.Unlock()
		return nil, false
	}
	for _, old := range b.addrs[p] {
		if !containsAddr(addrs, old) {
			stale = append(stale, old)
		}
	}
	b.addrs[p] = appendNew(nil, addrs...)
	b.mu.Unlock()
	b.changed()
	return stale, true
}

// remove forgets p.
func (b *addrBook) remove(p peer.ID) {
	b.mu.Lock()
	delete(b.addrs, p)
	b.forgotten[p] = true
	b.mu.Unlock()
	b.changed()
}

func (b *addrBook) changed() {
	select {
	case b.dirty <- struct{}{}:
	default:
	}
}

// run saves the book after changes until ctx ends.
func (b *addrBook) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.dirty:
		}
		select {
		case <-ctx.Done():
			return // Close saves.
		case <-time.After(saveDelay):
		}
		if err := b.save(); err != nil {
			b.logger.Error("saving the peerstore failed", "error", err)
		}
	}
}

// encodeLocked renders the book: sorted lines of <addr>/p2p/<id>.
func (b *addrBook) encodeLocked() []byte {
	var lines []string
	for p, as := range b.addrs {
		full, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: p, Addrs: as})
		for _, a := range full {
			lines = append(lines, a.String())
		}
	}
	slices.Sort(lines)
	var buf bytes.Buffer
	for _, l := range lines {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// save writes the file if the book changed since it was last read or
// written. It writes a temporary file and renames it, so a crash never
// leaves a truncated peerstore.
func (b *addrBook) save() error {
	if b.path == "" {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	data := b.encodeLocked()
	if bytes.Equal(data, b.written) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(b.path), 0o700); err != nil {
		return fmt.Errorf("network: saving the peerstore: %w", err)
	}
	tmp := b.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("network: saving the peerstore: %w", err)
	}
	if err := os.Rename(tmp, b.path); err != nil {
		return fmt.Errorf("network: saving the peerstore: %w", err)
	}
	b.written = data
	return nil
}

func containsAddr(as []ma.Multiaddr, a ma.Multiaddr) bool {
	return slices.ContainsFunc(as, a.Equal)
}

// appendNew appends the addresses of add that dst lacks, without /p2p/.
func appendNew(dst []ma.Multiaddr, add ...ma.Multiaddr) []ma.Multiaddr {
	for _, a := range add {
		if t, _ := peer.SplitAddr(a); t != nil {
			a = t
		}
		if len(a) > 0 && !containsAddr(dst, a) {
			dst = append(dst, a)
		}
	}
	return dst
}

// WritePeerstore writes the peerstore file at path with addrs (each ending
// with /p2p/<id>; those of self are left out), as `init --peers` does.
func WritePeerstore(path string, self peer.ID, addrs []ma.Multiaddr) error {
	b := newAddrBook(path, self, hclog.NewNullLogger())
	for _, a := range addrs {
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return fmt.Errorf("%s: not a peer address (it must end with /p2p/<peer id>): %w", a, err)
		}
		if ai.ID != self {
			b.add(ai.ID, ai.Addrs)
		}
	}
	return b.save()
}
