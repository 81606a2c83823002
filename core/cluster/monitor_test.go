package cluster

import (
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
)

func TestMonitorAlertsOnExpiry(t *testing.T) {
	m := newMonitor()
	now := time.Now()
	self, other := core.PeerID("12D3KooWself"), core.PeerID("12D3KooWother")
	at := func(d time.Duration) int64 { return now.Add(d).UnixNano() }

	m.put(core.Metric{Name: "freespace", Peer: self, Valid: true, Weight: 10, Expire: at(time.Second)})
	m.put(core.Metric{Name: "freespace", Peer: other, Valid: true, Weight: 20, Expire: at(3 * time.Second)})
	// A failed measurement does not replace the metric held...
	m.putIfAbsent(core.Metric{Name: "freespace", Peer: self, Expire: at(time.Hour)})
	// ... but stands in where there is none.
	m.putIfAbsent(core.Metric{Name: "numpin", Peer: self, Expire: at(2 * time.Second)})

	if got := m.latest("freespace", now); len(got) != 2 || got[0].Weight+got[1].Weight != 30 {
		t.Fatalf("latest freespace: %+v", got)
	}
	if got := m.latest("numpin", now); len(got) != 0 {
		t.Fatalf("an invalid metric is listed: %+v", got)
	}

	if expired := m.checkExpired(now.Add(1500 * time.Millisecond)); len(expired) != 1 || expired[0] != self {
		t.Fatalf("expired peers %v, want [%s]", expired, self)
	}
	alerts := m.recentAlerts()
	if len(alerts) != 1 || alerts[0].Peer != self || alerts[0].Name != "freespace" || !alerts[0].Valid {
		t.Fatalf("alerts after this peer's metric expired: %+v", alerts)
	}
	m.checkExpired(now.Add(5 * time.Second))
	alerts = m.recentAlerts()
	if len(alerts) != 3 {
		t.Fatalf("want 3 alerts, got %+v", alerts)
	}
	// Most recent first; expired metrics are forgotten.
	if alerts[2].Peer != self || alerts[2].Name != "freespace" {
		t.Fatalf("oldest alert: %+v", alerts[2])
	}
	m.checkExpired(now.Add(10 * time.Second))
	if n := len(m.recentAlerts()); n != 3 {
		t.Fatalf("an expired metric alerted twice: %d alerts", n)
	}
	if got := m.latest("freespace", now); len(got) != 0 {
		t.Fatalf("expired metrics kept: %+v", got)
	}
}
