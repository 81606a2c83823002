package client

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pincluster/pincluster/core"
)

// Bandwidth is the traffic of one libp2p protocol.
type Bandwidth struct {
	TotalIn  int64   `json:"total_in"`
	TotalOut int64   `json:"total_out"`
	RateIn   float64 `json:"rate_in"`
	RateOut  float64 `json:"rate_out"`
}

// BandwidthByProtocol is the body of GET /health/bandwidth, keyed by
// protocol ID. It is nil when the peer has no bandwidth reporter.
type BandwidthByProtocol map[string]Bandwidth

// ID returns the identity of the peer (GET /id).
func (c *Client) ID(ctx context.Context) (core.ID, error) {
	var id core.ID
	err := c.do(ctx, &request{method: "GET", path: "/id"}, &id)
	return id, err
}

// Version returns the peer's software version (GET /version).
func (c *Client) Version(ctx context.Context) (core.Version, error) {
	var v core.Version
	err := c.do(ctx, &request{method: "GET", path: "/version"}, &v)
	return v, err
}

// Peers streams the identity of every cluster peer (GET /peers).
func (c *Client) Peers(ctx context.Context) iter.Seq2[core.ID, error] {
	return stream[core.ID](c, ctx, &request{method: "GET", path: "/peers"})
}

// PeerAdd asks the peer to add another peer to the cluster (POST /peers).
// pincluster answers 501: peers join by bootstrapping to a member.
func (c *Client) PeerAdd(ctx context.Context, pid core.PeerID) (core.ID, error) {
	body, _ := json.Marshal(struct {
		PeerID string `json:"peer_id"`
	}{pid.String()})
	var id core.ID
	err := c.do(ctx, &request{method: "POST", path: "/peers", body: body, contentType: "application/json"}, &id)
	return id, err
}

// PeerRm removes a peer from the cluster (DELETE /peers/{peer}).
func (c *Client) PeerRm(ctx context.Context, pid core.PeerID) error {
	return c.do(ctx, &request{method: "DELETE", path: "/peers/" + url.PathEscape(pid.String())}, nil)
}

// PinQuery encodes pin options as the query string IPFS Cluster's client
// sends with POST /pins/...: mode, name, replication-max, replication-min,
// shard-size and user-allocations always; expire-at, meta-<key>,
// pin-update and origins when set. Keys are sorted.
func PinQuery(o core.PinOptions) url.Values {
	q := url.Values{}
	q.Set("mode", o.Mode.String())
	q.Set("name", o.Name)
	q.Set("replication-max", strconv.Itoa(o.ReplicationFactorMax))
	q.Set("replication-min", strconv.Itoa(o.ReplicationFactorMin))
	q.Set("shard-size", strconv.FormatUint(o.ShardSize, 10))
	allocs := make([]string, len(o.UserAllocations))
	for i, p := range o.UserAllocations {
		allocs[i] = p.String()
	}
	q.Set("user-allocations", strings.Join(allocs, ","))
	if !o.ExpireAt.IsZero() {
		q.Set("expire-at", o.ExpireAt.Format(time.RFC3339Nano))
	}
	for k, v := range o.Metadata {
		if k != "" {
			q.Set("meta-"+k, v)
		}
	}
	if o.PinUpdate.Defined() {
		q.Set("pin-update", o.PinUpdate.String())
	}
	if len(o.Origins) > 0 {
		q.Set("origins", strings.Join(o.Origins, ","))
	}
	return q
}

// Pin pins a CID with the given options (POST /pins/{cid}) and returns the
// pin as the peer submitted it, with the effective replication factors.
func (c *Client) Pin(ctx context.Context, ci core.Cid, opts core.PinOptions) (core.Pin, error) {
	var pin core.Pin
	err := c.do(ctx, &request{method: "POST", path: "/pins/" + ci.String(), query: PinQuery(opts).Encode()}, &pin)
	return pin, err
}

// ipfsPath turns a bare CID into /ipfs/<cid>; other paths are cleaned of
// a trailing slash and must start with /ipfs/, /ipns/ or /ipld/.
func ipfsPath(p string) (string, error) {
	p = strings.TrimRight(strings.TrimSpace(p), "/")
	if !strings.HasPrefix(p, "/") {
		if _, err := core.DecodeCid(strings.SplitN(p, "/", 2)[0]); err != nil {
			return "", fmt.Errorf("%q is neither a CID nor an /ipfs/, /ipns/ or /ipld/ path: %w", p, err)
		}
		p = "/ipfs/" + p
	}
	for _, ns := range []string{"/ipfs/", "/ipns/", "/ipld/"} {
		if strings.HasPrefix(p, ns) && len(p) > len(ns) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q is not an /ipfs/, /ipns/ or /ipld/ path", p)
}

// PinPath pins what an IPFS path resolves to (POST /pins/ipfs/<cid>/...).
// A bare CID is sent as /ipfs/<cid>, which is how ipfs-cluster-ctl pins.
func (c *Client) PinPath(ctx context.Context, path string, opts core.PinOptions) (core.Pin, error) {
	p, err := ipfsPath(path)
	if err != nil {
		return core.Pin{}, err
	}
	var pin core.Pin
	err = c.do(ctx, &request{method: "POST", path: "/pins" + escapePath(p), query: PinQuery(opts).Encode()}, &pin)
	return pin, err
}

// PinUpdate pins to (a CID or an IPFS path) with the options and
// allocations of the existing pin from
// (POST /pins/ipfs/<to>?pin-update=<from>&...), as ipfs-cluster-ctl's
// "pin update" does. opts may override the name and the expiry; from stays
// pinned.
func (c *Client) PinUpdate(ctx context.Context, from core.Cid, to string, opts core.PinOptions) (core.Pin, error) {
	opts.PinUpdate = from
	return c.PinPath(ctx, to, opts)
}

// Unpin unpins a CID (DELETE /pins/{cid}) and returns the pin as it was.
func (c *Client) Unpin(ctx context.Context, ci core.Cid) (core.Pin, error) {
	var pin core.Pin
	err := c.do(ctx, &request{method: "DELETE", path: "/pins/" + ci.String()}, &pin)
	return pin, err
}

// UnpinPath unpins what an IPFS path resolves to (DELETE /pins/ipfs/...).
func (c *Client) UnpinPath(ctx context.Context, path string) (core.Pin, error) {
	p, err := ipfsPath(path)
	if err != nil {
		return core.Pin{}, err
	}
	var pin core.Pin
	err = c.do(ctx, &request{method: "DELETE", path: "/pins" + escapePath(p)}, &pin)
	return pin, err
}

// pinTypes are the pin types a filter can name, in IPFS Cluster's order.
var pinTypes = []core.PinType{core.DataType, core.MetaType, core.ClusterDAGType, core.ShardType}

// PinTypeFilter encodes a pin-type filter as the filter= value of
// GET /allocations: "all", or the comma-separated names of its types.
func PinTypeFilter(filter core.PinType) string {
	if filter&core.AllType == core.AllType || filter == 0 {
		return "all"
	}
	var names []string
	for _, t := range pinTypes {
		if filter&t != 0 {
			names = append(names, t.String())
		}
	}
	return strings.Join(names, ",")
}

// Allocations streams the pinset, restricted to the pin types of filter
// (GET /allocations?filter=...). core.AllType (or 0) lists everything.
func (c *Client) Allocations(ctx context.Context, filter core.PinType) iter.Seq2[core.Pin, error] {
	q := "filter=" + url.QueryEscape(PinTypeFilter(filter))
	return stream[core.Pin](c, ctx, &request{method: "GET", path: "/allocations", query: q})
}

// Allocation returns one pin of the pinset (GET /allocations/{cid}). A CID
// that is not pinned gives a core.Error with code 404.
func (c *Client) Allocation(ctx context.Context, ci core.Cid) (core.Pin, error) {
	var pin core.Pin
	err := c.do(ctx, &request{method: "GET", path: "/allocations/" + ci.String()}, &pin)
	return pin, err
}

// statusBits are the single tracker statuses, in bit order.
var statusBits = []core.TrackerStatus{
	core.TrackerStatusClusterError, core.TrackerStatusPinError, core.TrackerStatusUnpinError,
	core.TrackerStatusPinned, core.TrackerStatusPinning, core.TrackerStatusUnpinning,
	core.TrackerStatusUnpinned, core.TrackerStatusRemote, core.TrackerStatusPinQueued,
	core.TrackerStatusUnpinQueued, core.TrackerStatusSharded, core.TrackerStatusUnexpectedlyUnpinned,
}

// StatusFilter encodes a status filter as the filter= value of GET /pins:
// "" for no filter, the name of a status or of a composite (error,
// queued), or else the comma-separated names of its statuses.
func StatusFilter(filter core.TrackerStatus) string {
	if filter == core.TrackerStatusUndefined {
		return ""
	}
	if name := filter.String(); name != "undefined" {
		return name
	}
	var names []string
	for _, s := range statusBits {
		if filter&s != 0 {
			names = append(names, s.String())
		}
	}
	return strings.Join(names, ",")
}

func localQuery(local bool) string { return "local=" + strconv.FormatBool(local) }

// Status returns the status of a CID on every peer (GET /pins/{cid}), or
// only on the peer answering when local is true. A CID that is not pinned
// is reported as unpinned, not as an error.
func (c *Client) Status(ctx context.Context, ci core.Cid, local bool) (core.GlobalPinInfo, error) {
	var gpi core.GlobalPinInfo
	err := c.do(ctx, &request{method: "GET", path: "/pins/" + ci.String(), query: localQuery(local)}, &gpi)
	return gpi, err
}

// StatusCids streams the status of several CIDs
// (GET /pins?local=...&filter=&cids=c1,c2), in the order the peer gets
// the answers.
func (c *Client) StatusCids(ctx context.Context, cids []core.Cid, local bool) iter.Seq2[core.GlobalPinInfo, error] {
	strs := make([]string, len(cids))
	for i, ci := range cids {
		strs[i] = ci.String()
	}
	q := localQuery(local) + "&filter=&cids=" + url.QueryEscape(strings.Join(strs, ","))
	return stream[core.GlobalPinInfo](c, ctx, &request{method: "GET", path: "/pins", query: q})
}

// StatusAll streams the status of every pin whose status on some peer
// passes filter (GET /pins?local=...&filter=...&cids=). A zero filter
// passes everything.
func (c *Client) StatusAll(ctx context.Context, filter core.TrackerStatus, local bool) iter.Seq2[core.GlobalPinInfo, error] {
	q := localQuery(local) + "&filter=" + url.QueryEscape(StatusFilter(filter)) + "&cids="
	return stream[core.GlobalPinInfo](c, ctx, &request{method: "GET", path: "/pins", query: q})
}

// Recover re-queues a CID whose pin or unpin failed
// (POST /pins/{cid}/recover) and returns its status.
func (c *Client) Recover(ctx context.Context, ci core.Cid, local bool) (core.GlobalPinInfo, error) {
	var gpi core.GlobalPinInfo
	err := c.do(ctx, &request{method: "POST", path: "/pins/" + ci.String() + "/recover", query: localQuery(local)}, &gpi)
	return gpi, err
}

// RecoverAll re-queues every failed item (POST /pins/recover) and streams
// the status of those that were re-queued.
func (c *Client) RecoverAll(ctx context.Context, local bool) iter.Seq2[core.GlobalPinInfo, error] {
	return stream[core.GlobalPinInfo](c, ctx, &request{method: "POST", path: "/pins/recover", query: localQuery(local)})
}

// Sync re-checks the status of a CID against IPFS
// (POST /pins/{cid}/sync). This endpoint is pincluster's: IPFS Cluster
// v1.1 does not serve it.
func (c *Client) Sync(ctx context.Context, ci core.Cid, local bool) (core.GlobalPinInfo, error) {
	var gpi core.GlobalPinInfo
	err := c.do(ctx, &request{method: "POST", path: "/pins/" + ci.String() + "/sync", query: localQuery(local)}, &gpi)
	return gpi, err
}

// SyncAll re-checks every pin against IPFS (POST /pins/sync) and streams
// their status. This endpoint is pincluster's: IPFS Cluster v1.1 does not
// serve it.
func (c *Client) SyncAll(ctx context.Context, local bool) iter.Seq2[core.GlobalPinInfo, error] {
	return stream[core.GlobalPinInfo](c, ctx, &request{method: "POST", path: "/pins/sync", query: localQuery(local)})
}

// RepoGC runs a garbage collection on the IPFS daemons (POST /ipfs/gc),
// or only on the answering peer's when local is true.
func (c *Client) RepoGC(ctx context.Context, local bool) (core.GlobalRepoGC, error) {
	var gc core.GlobalRepoGC
	err := c.do(ctx, &request{method: "POST", path: "/ipfs/gc", query: localQuery(local)}, &gc)
	return gc, err
}

// Plugins describes the plugins the peer runs (GET /plugins, pincluster's
// own endpoint).
func (c *Client) Plugins(ctx context.Context) ([]core.PluginInfo, error) {
	var infos []core.PluginInfo
	err := c.do(ctx, &request{method: "GET", path: "/plugins"}, &infos)
	return infos, err
}

// ReloadPlugins makes the peer apply its service.json's plugin sections,
// swapping the plugins that can be swapped on a running peer
// (POST /plugins/reload, pincluster's own endpoint). It returns what
// happened to each kind; an error when nothing could be applied.
func (c *Client) ReloadPlugins(ctx context.Context) ([]core.PluginReload, error) {
	var results []core.PluginReload
	err := c.do(ctx, &request{method: "POST", path: "/plugins/reload"}, &results)
	return results, err
}

// ConnectGraph returns the connectivity graph of the cluster
// (GET /health/graph).
func (c *Client) ConnectGraph(ctx context.Context) (core.ConnectGraph, error) {
	var g core.ConnectGraph
	err := c.do(ctx, &request{method: "GET", path: "/health/graph"}, &g)
	return g, err
}

// Alerts returns the recent alerts, most recent first (GET /health/alerts).
func (c *Client) Alerts(ctx context.Context) ([]core.Alert, error) {
	var alerts []core.Alert
	err := c.do(ctx, &request{method: "GET", path: "/health/alerts"}, &alerts)
	return alerts, err
}

// BandwidthByProtocol returns the libp2p traffic by protocol
// (GET /health/bandwidth); nil when the peer does not measure it.
func (c *Client) BandwidthByProtocol(ctx context.Context) (BandwidthByProtocol, error) {
	var bw BandwidthByProtocol
	err := c.do(ctx, &request{method: "GET", path: "/health/bandwidth"}, &bw)
	return bw, err
}

// Metrics returns the latest valid metric of the given name of every peer
// (GET /monitor/metrics/{name}).
func (c *Client) Metrics(ctx context.Context, name string) ([]core.Metric, error) {
	var m []core.Metric
	err := c.do(ctx, &request{method: "GET", path: "/monitor/metrics/" + url.PathEscape(name)}, &m)
	return m, err
}

// MetricNames returns the names of the metrics the peer knows
// (GET /monitor/metrics).
func (c *Client) MetricNames(ctx context.Context) ([]string, error) {
	var names []string
	err := c.do(ctx, &request{method: "GET", path: "/monitor/metrics"}, &names)
	return names, err
}

// Health checks that the API answers (GET /health, 204).
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, &request{method: "GET", path: "/health"}, nil)
}

// Token asks for a JWT bearer token for the configured user (POST /token).
// The peer must have basic_auth_credentials configured.
func (c *Client) Token(ctx context.Context) (string, error) {
	var t struct {
		Token string `json:"token"`
	}
	err := c.do(ctx, &request{method: "POST", path: "/token"}, &t)
	return t.Token, err
}
