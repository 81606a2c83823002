package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pincluster/pincluster/core"
)

// makeDot renders a connectivity graph in the DOT language. Cluster peers
// are the nodes C0, C1, … (boxes), IPFS daemons I0, I1, … (cylinders);
// edges are the connections among cluster peers, from each cluster peer to
// its IPFS daemon, and among the IPFS daemons. With allIPFS, IPFS peers
// that no cluster peer is attached to are drawn as well.
func makeDot(g core.ConnectGraph, allIPFS bool) string {
	// Cluster peers: every peer the graph mentions.
	clusterSet := map[string]bool{}
	if g.ClusterID != "" {
		clusterSet[g.ClusterID.String()] = true
	}
	for p, links := range g.ClusterLinks {
		clusterSet[p] = true
		for _, l := range links {
			clusterSet[l.String()] = true
		}
	}
	for p := range g.ClusterTrustLinks {
		clusterSet[p] = true
	}
	for p := range g.IDtoPeername {
		clusterSet[p] = true
	}
	for p := range g.ClustertoIPFS {
		clusterSet[p] = true
	}
	clusterPeers := sortedKeys(clusterSet)
	cIndex := make(map[string]string, len(clusterPeers))
	for i, p := range clusterPeers {
		cIndex[p] = fmt.Sprintf("C%d", i)
	}

	// IPFS peers: those attached to cluster peers, and, with allIPFS,
	// every one the swarm links mention.
	ipfsSet := map[string]bool{}
	attached := map[string]bool{}
	for _, ip := range g.ClustertoIPFS {
		ipfsSet[ip.String()] = true
		attached[ip.String()] = true
	}
	if allIPFS {
		for ip, links := range g.IPFSLinks {
			ipfsSet[ip] = true
			for _, l := range links {
				ipfsSet[l.String()] = true
			}
		}
	}
	ipfsPeers := sortedKeys(ipfsSet)
	iIndex := make(map[string]string, len(ipfsPeers))
	for i, p := range ipfsPeers {
		iIndex[p] = fmt.Sprintf("I%d", i)
	}

	var b strings.Builder
	b.WriteString("digraph cluster {\n")
	b.WriteString("concentrate=true\n\n")
	b.WriteString("/* The nodes of the connectivity graph */\n")
	b.WriteString("/* The cluster-service peers */\n")
	b.WriteString("subgraph cpeers {\n")
	b.WriteString("rank=\"min\"\n")
	b.WriteString("style=\"invis\"\n")
	for _, p := range clusterPeers {
		name := g.IDtoPeername[p]
		label := shortID(p)
		if name != "" {
			label = name + "\n" + label
		}
		color := "darkorange"
		if p == g.ClusterID.String() {
			color = "orange"
		}
		fill := "lightgray"
		if trusted, ok := g.ClusterTrustLinks[p]; ok && trusted {
			fill = "lightskyblue"
		}
		fmt.Fprintf(&b, "%s [label=%s tooltip=%s color=%s style=\"filled\" shape=\"box3d\" fontcolor=\"black\" fillcolor=%s]\n",
			cIndex[p], dotQuote(label), dotQuote(p), dotQuote(color), dotQuote(fill))
	}
	b.WriteString("}\n\n")

	b.WriteString("/* The ipfs peers */\n")
	b.WriteString("subgraph ipeers {\n")
	b.WriteString("rank=\"max\"\n")
	b.WriteString("style=\"invis\"\n")
	for _, p := range ipfsPeers {
		fill := "seagreen3"
		if !attached[p] {
			fill = "gray90"
		}
		fmt.Fprintf(&b, "%s [label=%s tooltip=%s color=\"turquoise4\" style=\"filled\" shape=\"cylinder\" fontcolor=\"black\" fillcolor=%s]\n",
			iIndex[p], dotQuote("IPFS\n"+shortID(p)), dotQuote(p), dotQuote(fill))
	}
	b.WriteString("}\n\n")

	b.WriteString("/* Edges representing active connections in the cluster */\n")
	b.WriteString("/* The connections among cluster-service peers */\n")
	for _, p := range clusterPeers {
		for _, l := range sortedPeers(g.ClusterLinks[p]) {
			if to, ok := cIndex[l]; ok {
				fmt.Fprintf(&b, "%s -> %s\n", cIndex[p], to)
			}
		}
	}
	b.WriteString("\n/* The connections between cluster peers and their ipfs daemons */\n")
	for _, p := range clusterPeers {
		if ip, ok := g.ClustertoIPFS[p]; ok {
			if to, ok := iIndex[ip.String()]; ok {
				fmt.Fprintf(&b, "%s -> %s\n", cIndex[p], to)
			}
		}
	}
	b.WriteString("\n/* The swarm peer connections among ipfs daemons in the cluster */\n")
	for _, p := range ipfsPeers {
		for _, l := range sortedPeers(g.IPFSLinks[p]) {
			if to, ok := iIndex[l]; ok {
				fmt.Fprintf(&b, "%s -> %s\n", iIndex[p], to)
			}
		}
	}
	b.WriteString("}\n")
	return b.String()
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if k != "" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func sortedPeers(ps []core.PeerID) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	sort.Strings(out)
	return out
}

// shortID abbreviates a peer ID for labels: its last 8 characters.
func shortID(id string) string {
	if len(id) <= 12 {
		return id
	}
	return "…" + id[len(id)-8:]
}

// dotQuote returns s as a DOT double-quoted string.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
