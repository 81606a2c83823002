package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/pincluster/pincluster/api/client"
	"github.com/pincluster/pincluster/core"
)

// writeJSON writes v indented with 4 spaces, as ipfs-cluster-ctl does.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func (c *ctl) printJSON(v any) {
	if err := writeJSON(c.stdout, v); err != nil {
		c.errorf("error encoding the output: %v", err)
	}
}

// print writes one object in the chosen encoding.
func (c *ctl) print(v any) {
	if c.enc == "json" {
		c.printJSON(v)
		return
	}
	w := c.stdout
	switch o := v.(type) {
	case core.ID:
		textID(w, o)
	case core.GlobalPinInfo:
		textGPInfo(w, o)
	case core.Pin:
		textPin(w, o)
	case core.Version:
		fmt.Fprintln(w, o.Version)
	case []core.Metric:
		for _, m := range o {
			textMetric(w, m)
		}
	case []core.Alert:
		for _, a := range o {
			textAlert(w, a)
		}
	case []string:
		for _, s := range o {
			fmt.Fprintln(w, s)
		}
	case core.GlobalRepoGC:
		textRepoGC(w, o)
	case client.BandwidthByProtocol:
		textBandwidth(w, o)
	case []core.PluginInfo:
		for _, p := range o {
			textPlugin(w, p)
		}
	case []core.PluginReload:
		for _, r := range o {
			textPluginReload(w, r)
		}
	default:
		c.printJSON(v)
	}
}

// printAdded prints one /add output: "added <cid> <name>", or the CID
// alone when quiet.
func (c *ctl) printAdded(o core.AddedOutput, quiet bool) {
	if c.enc == "json" {
		c.printJSON(o)
		return
	}
	if quiet {
		fmt.Fprintln(c.stdout, o.Cid.String())
		return
	}
	fmt.Fprintf(c.stdout, "added %s %s\n", o.Cid.String(), o.Name)
}

// printAddedList prints buffered /add outputs (--no-stream): one JSON
// array, or one line each.
func (c *ctl) printAddedList(list []core.AddedOutput, quiet bool) {
	if c.enc == "json" {
		c.printJSON(list)
		return
	}
	for _, o := range list {
		c.printAdded(o, quiet)
	}
}

func cidString(ci core.Cid) string {
	if !ci.Defined() {
		return "<undefined>"
	}
	return ci.String()
}

// textID: "<id> | <peername> | Sees <n> other peers", the addresses, the
// IPFS daemon.
func textID(w io.Writer, id core.ID) {
	if id.Error != "" {
		fmt.Fprintf(w, "%s | ERROR: %s\n", id.ID, id.Error)
		return
	}
	fmt.Fprintf(w, "%s | %s | Sees %d other peers\n", id.ID, id.Peername, len(id.ClusterPeers)-1)
	addrs := append([]string(nil), id.Addresses...)
	sort.Strings(addrs)
	fmt.Fprintln(w, "  > Addresses:")
	for _, a := range addrs {
		fmt.Fprintf(w, "    - %s\n", a)
	}
	if id.IPFS.Error != "" {
		fmt.Fprintf(w, "  > IPFS ERROR: %s\n", id.IPFS.Error)
		return
	}
	ipfsAddrs := append([]string(nil), id.IPFS.Addresses...)
	sort.Strings(ipfsAddrs)
	fmt.Fprintf(w, "  > IPFS: %s\n", id.IPFS.ID)
	for _, a := range ipfsAddrs {
		fmt.Fprintf(w, "    - %s\n", a)
	}
}

// textGPInfo: "<cid>[ | <name>]:" then one line per peer, sorted by peer ID.
func textGPInfo(w io.Writer, g core.GlobalPinInfo) {
	var b strings.Builder
	b.WriteString(cidString(g.Cid))
	if g.Name != "" {
		fmt.Fprintf(&b, " | %s", g.Name)
	}
	b.WriteString(":\n")
	peers := make([]string, 0, len(g.PeerMap))
	for p := range g.PeerMap {
		peers = append(peers, p)
	}
	sort.Strings(peers)
	for _, p := range peers {
		v := g.PeerMap[p]
		name := v.PeerName
		if name == "" {
			name = p
		}
		fmt.Fprintf(&b, "    > %-20s : %s", name, strings.ToUpper(v.Status.String()))
		if v.Error != "" {
			fmt.Fprintf(&b, ": %s", v.Error)
		}
		ts, _ := v.TS.MarshalText()
		fmt.Fprintf(&b, " | %s | Attempts: %d | Priority: %t\n", ts, v.AttemptCount, v.PriorityPin)
	}
	io.WriteString(w, b.String())
}

// textPin: "<cid> | <name> | <TYPE> | Repl. Factor: ... | Allocations: [...] |
// Recursive | Metadata: ... | Exp: ... | Added: ...".
func textPin(w io.Writer, p core.Pin) {
	var b strings.Builder
	t := strings.ToUpper(p.Type.String())
	if p.Mode == core.PinModeDirect {
		t += "-DIRECT"
	}
	fmt.Fprintf(&b, "%s | %s | %s | ", cidString(p.Cid), p.Name, t)
	if p.ReplicationFactorMin == -1 && p.ReplicationFactorMax == -1 {
		b.WriteString("Repl. Factor: -1 | Allocations: [everywhere]")
	} else {
		allocs := make([]string, len(p.Allocations))
		for i, a := range p.Allocations {
			allocs[i] = a.String()
		}
		sort.Strings(allocs)
		fmt.Fprintf(&b, "Repl. Factor: %d--%d | Allocations: %s", p.ReplicationFactorMin, p.ReplicationFactorMax, allocs)
	}
	switch {
	case p.MaxDepth == 0:
		b.WriteString(" | Direct")
	case p.MaxDepth < 0:
		b.WriteString(" | Recursive")
	default:
		fmt.Fprintf(&b, " | Recursive-%d", p.MaxDepth)
	}
	b.WriteString(" | Metadata:")
	if len(p.Metadata) == 0 {
		b.WriteString(" no")
	} else {
		keys := make([]string, 0, len(p.Metadata))
		for k := range p.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, " %s:%s", k, p.Metadata[k])
		}
	}
	exp := "∞"
	if !p.ExpireAt.IsZero() {
		exp = p.ExpireAt.Format("2006-01-02 15:04:05")
	}
	fmt.Fprintf(&b, " | Exp: %s | Added: %s\n", exp, p.Timestamp.Format("2006-01-02 15:04:05"))
	io.WriteString(w, b.String())
}

// textMetric: "<peer> | <name>: <value> | Expires in: <humanized>".
func textMetric(w io.Writer, m core.Metric) {
	v := m.Value
	if m.Name == "freespace" && m.Weight > 0 {
		v = humanize.Bytes(uint64(m.Weight))
	}
	fmt.Fprintf(w, "%s | %s: %s | Expires in: %s\n", m.Peer, m.Name, v, humanize.Time(time.Unix(0, m.Expire)))
}

// textAlert: "<peer>: <name>. Expired at: <humanized>. Triggered at: <humanized>".
func textAlert(w io.Writer, a core.Alert) {
	fmt.Fprintf(w, "%s: %s. Expired at: %s. Triggered at: %s\n",
		a.Peer, a.Name, humanize.Time(time.Unix(0, a.Expire)), humanize.Time(a.TriggeredAt))
}

// textPlugin: one line per plugin, e.g.
//
//	allocator balanced 1.0.0 (protocol 1, built-in): running, pid 4242, up 2m3s, 0 restarts
func textPlugin(w io.Writer, p core.PluginInfo) {
	fmt.Fprintf(w, "%s %s %s (protocol %d, %s): %s", p.Kind, p.Name, p.Version, p.ProtocolVersion, p.Path, p.State)
	if p.Pid != 0 {
		fmt.Fprintf(w, ", pid %d", p.Pid)
	}
	if p.Uptime != "" {
		fmt.Fprintf(w, ", up %s", p.Uptime)
	}
	fmt.Fprintf(w, ", %d restarts", p.Restarts)
	if p.LastError != "" {
		fmt.Fprintf(w, ", last error: %s", p.LastError)
	}
	fmt.Fprintln(w)
}

// textPluginReload: one line per kind, e.g. "allocator: swapped balanced
// -> rendezvous" or "consensus: unchanged (raft)".
func textPluginReload(w io.Writer, r core.PluginReload) {
	switch {
	case r.Result == core.PluginReloadSwapped && r.Previous != "" && r.Previous != r.Name:
		fmt.Fprintf(w, "%s: %s %s -> %s\n", r.Kind, r.Result, r.Previous, r.Name)
	case r.Error != "":
		fmt.Fprintf(w, "%s: %s (%s): %s\n", r.Kind, r.Result, r.Name, r.Error)
	default:
		fmt.Fprintf(w, "%s: %s (%s)\n", r.Kind, r.Result, r.Name)
	}
}

// textRepoGC: one block per peer with the CIDs removed.
func textRepoGC(w io.Writer, gc core.GlobalRepoGC) {
	peers := make([]string, 0, len(gc.PeerMap))
	for p := range gc.PeerMap {
		peers = append(peers, p)
	}
	sort.Strings(peers)
	for _, p := range peers {
		item := gc.PeerMap[p]
		name := p
		if item.Peername != "" {
			name = item.Peername
		}
		if item.Error != "" {
			fmt.Fprintf(w, "%-15s | ERROR: %s\n", name, item.Error)
		} else {
			fmt.Fprintf(w, "%-15s\n", name)
		}
		fmt.Fprintln(w, "  > CIDs:")
		for _, k := range item.Keys {
			if k.Error != "" {
				fmt.Fprintf(w, "    - ERROR: %s\n", k.Error)
				continue
			}
			fmt.Fprintf(w, "    - %s\n", cidString(k.Key))
		}
	}
}

// textBandwidth: one line per protocol, sorted.
func textBandwidth(w io.Writer, bw client.BandwidthByProtocol) {
	protos := make([]string, 0, len(bw))
	for p := range bw {
		protos = append(protos, p)
	}
	sort.Strings(protos)
	for _, p := range protos {
		b := bw[p]
		fmt.Fprintf(w, "%s | In: %s (%s/s) | Out: %s (%s/s)\n", p,
			humanize.Bytes(uint64(max(b.TotalIn, 0))), humanize.Bytes(uint64(max(b.RateIn, 0))),
			humanize.Bytes(uint64(max(b.TotalOut, 0))), humanize.Bytes(uint64(max(b.RateOut, 0))))
	}
}
