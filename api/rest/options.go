package rest

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/pincluster/pincluster/core"
)

// metaPrefix starts the query parameters that become pin metadata.
const metaPrefix = "meta-"

// ParsePinOptions reads the pin options of a query string the way IPFS
// Cluster does for POST /pins/* and POST /add:
//
//	name, mode (recursive|direct; anything else is recursive),
//	replication (overrides replication-min and replication-max),
//	replication-min, replication-max, shard-size, user-allocations
//	(comma-separated peer IDs; undecodable ones are dropped), expire-at
//	(RFC 3339) or expire-in (Go duration, at least 1s), meta-<key>,
//	pin-update (CID) and origins (comma-separated multiaddresses, each
//	with /p2p/<id>).
//
// Metadata is always a non-nil map. The returned error text is the one
// IPFS Cluster answers with status 400.
func ParsePinOptions(q url.Values) (core.PinOptions, error) {
	return parsePinOptions(q, time.Now)
}

func parsePinOptions(q url.Values, now func() time.Time) (core.PinOptions, error) {
	var po core.PinOptions
	po.Name = q.Get("name")
	po.Mode = core.PinModeFromString(q.Get("mode"))

	rmin, rmax := q.Get("replication-min"), q.Get("replication-max")
	if r := q.Get("replication"); r != "" {
		rmin, rmax = r, r
	}
	var err error
	if po.ReplicationFactorMin, err = parseIntParam("replication-min", rmin); err != nil {
		return po, err
	}
	if po.ReplicationFactorMax, err = parseIntParam("replication-max", rmax); err != nil {
		return po, err
	}

	if v := q.Get("shard-size"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return po, errBadRequest("parameter shard_size is invalid")
		}
		po.ShardSize = n
	}

	if v := q.Get("user-allocations"); v != "" {
		parts := strings.Split(v, ",")
		po.UserAllocations = make([]core.PeerID, 0, len(parts))
		for _, p := range parts {
			pid, err := core.DecodePeerID(p)
			if err != nil {
				continue
			}
			po.UserAllocations = append(po.UserAllocations, pid)
		}
	}

	if v := q.Get("expire-at"); v != "" {
		var t time.Time
		if err := t.UnmarshalText([]byte(v)); err != nil {
			return po, errBadRequest("expire-at cannot be parsed: " + err.Error())
		}
		po.ExpireAt = t
	} else if v := q.Get("expire-in"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return po, errBadRequest("expire-in cannot be parsed: " + err.Error())
		}
		if d < time.Second {
			return po, errBadRequest("expire-in duration too short")
		}
		po.ExpireAt = now().Add(d)
	}

	po.Metadata = make(map[string]string)
	for k := range q {
		key, ok := strings.CutPrefix(k, metaPrefix)
		if !ok || key == "" {
			continue
		}
		po.Metadata[key] = q.Get(k)
	}

	if v := q.Get("pin-update"); v != "" {
		c, err := core.DecodeCid(v)
		if err != nil {
			return po, errBadRequest("error decoding update option parameter: " + err.Error())
		}
		po.PinUpdate = c
	}

	if v := q.Get("origins"); v != "" {
		parts := strings.Split(v, ",")
		po.Origins = make([]string, 0, len(parts))
		for _, p := range parts {
			m, err := ma.NewMultiaddr(p)
			if err != nil {
				return po, errBadRequest("error decoding multiaddress: " + err.Error())
			}
			if _, err := m.ValueForProtocol(ma.P_P2P); err != nil {
				return po, errBadRequest("multiaddress does not contain peer ID: " + err.Error())
			}
			po.Origins = append(po.Origins, m.String())
		}
	}
	return po, nil
}

func parseIntParam(name, v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errBadRequest(fmt.Sprintf("parameter %s invalid", name))
	}
	return n, nil
}
