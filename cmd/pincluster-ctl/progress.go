package main

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
)

// progressRefresh is how often the progress bar is redrawn.
const progressRefresh = 200 * time.Millisecond

// progressBar draws the bytes uploaded by add, with the rate, on standard
// error (only used when it is a terminal).
type progressBar struct {
	c     *ctl
	total int64 // 0 when unknown
	start time.Time
	sent  atomic.Int64

	stopOnce sync.Once
	done     chan struct{}
	exited   chan struct{}
	mu       sync.Mutex // guards drawn
	drawn    bool
}

func newProgressBar(c *ctl, total int64) *progressBar {
	b := &progressBar{c: c, total: total, start: time.Now(), done: make(chan struct{}), exited: make(chan struct{})}
	go b.loop()
	return b
}

// set records the number of bytes sent so far.
func (b *progressBar) set(n int64) { b.sent.Store(n) }

func (b *progressBar) loop() {
	defer close(b.exited)
	t := time.NewTicker(progressRefresh)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
			b.draw()
		}
	}
}

// line renders the bar for n bytes after elapsed time.
func (b *progressBar) line(n int64, elapsed time.Duration) string {
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(n) / s
	}
	rateStr := humanize.Bytes(uint64(rate)) + "/s"
	if b.total <= 0 {
		return fmt.Sprintf("%s sent, %s", humanize.Bytes(uint64(n)), rateStr)
	}
	const width = 30
	frac := float64(n) / float64(b.total)
	frac = min(max(frac, 0), 1)
	full := int(frac * width)
	bar := strings.Repeat("=", full)
	if full < width {
		bar += ">" + strings.Repeat(" ", width-full-1)
	}
	return fmt.Sprintf("%s / %s [%s] %3.0f%% %s", humanize.Bytes(uint64(n)), humanize.Bytes(uint64(b.total)), bar, frac*100, rateStr)
}

func (b *progressBar) draw() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	fmt.Fprintf(b.c.stderr, "\r\033[K%s", b.line(b.sent.Load(), time.Since(b.start)))
	b.drawn = true
}

// clear erases the bar (before a line is printed); it is drawn again at
// the next refresh.
func (b *progressBar) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		b.c.mu.Lock()
		fmt.Fprint(b.c.stderr, "\r\033[K")
		b.c.mu.Unlock()
		b.drawn = false
	}
}

// stop ends the redrawing and erases the bar.
func (b *progressBar) stop() {
	b.stopOnce.Do(func() {
		close(b.done)
		<-b.exited
		b.clear()
	})
}
