package core

import (
	"encoding/json"
	"strings"
)

// TrackerStatus is the status of a pin on one peer. Values are bit flags so
// that filters can combine them.
type TrackerStatus uint32

// Tracker statuses, with the names and values of IPFS Cluster's wire format.
const (
	TrackerStatusUndefined            TrackerStatus = 0
	TrackerStatusClusterError         TrackerStatus = 1 << 1
	TrackerStatusPinError             TrackerStatus = 1 << 2
	TrackerStatusUnpinError           TrackerStatus = 1 << 3
	TrackerStatusPinned               TrackerStatus = 1 << 4
	TrackerStatusPinning              TrackerStatus = 1 << 5
	TrackerStatusUnpinning            TrackerStatus = 1 << 6
	TrackerStatusUnpinned             TrackerStatus = 1 << 7
	TrackerStatusRemote               TrackerStatus = 1 << 8
	TrackerStatusPinQueued            TrackerStatus = 1 << 9
	TrackerStatusUnpinQueued          TrackerStatus = 1 << 10
	TrackerStatusSharded              TrackerStatus = 1 << 11
	TrackerStatusUnexpectedlyUnpinned TrackerStatus = 1 << 12

	// TrackerStatusError matches any error status.
	TrackerStatusError = TrackerStatusClusterError | TrackerStatusPinError | TrackerStatusUnpinError
	// TrackerStatusQueued matches both queued statuses.
	TrackerStatusQueued = TrackerStatusPinQueued | TrackerStatusUnpinQueued
)

var trackerStatusNames = []struct {
	s    TrackerStatus
	name string
}{
	{TrackerStatusUndefined, "undefined"},
	{TrackerStatusClusterError, "cluster_error"},
	{TrackerStatusPinError, "pin_error"},
	{TrackerStatusUnpinError, "unpin_error"},
	{TrackerStatusPinned, "pinned"},
	{TrackerStatusPinning, "pinning"},
	{TrackerStatusUnpinning, "unpinning"},
	{TrackerStatusUnpinned, "unpinned"},
	{TrackerStatusRemote, "remote"},
	{TrackerStatusPinQueued, "pin_queued"},
	{TrackerStatusUnpinQueued, "unpin_queued"},
	{TrackerStatusSharded, "sharded"},
	{TrackerStatusUnexpectedlyUnpinned, "unexpectedly_unpinned"},
	{TrackerStatusError, "error"},
	{TrackerStatusQueued, "queued"},
}

// String returns the wire name of the status.
func (st TrackerStatus) String() string {
	for _, n := range trackerStatusNames {
		if n.s == st {
			return n.name
		}
	}
	return "undefined"
}

// TrackerStatusFromString returns the status with the given name, or
// TrackerStatusUndefined for unknown names.
func TrackerStatusFromString(s string) TrackerStatus {
	for _, n := range trackerStatusNames {
		if n.name == s {
			return n.s
		}
	}
	return TrackerStatusUndefined
}

// ParseStatusFilter parses a comma-separated list of status names. Unknown
// names are ignored; an empty string is the zero filter (everything).
func ParseStatusFilter(s string) TrackerStatus {
	var f TrackerStatus
	for _, part := range strings.Split(strings.ReplaceAll(s, " ", ""), ",") {
		f |= TrackerStatusFromString(part)
	}
	return f
}

// Match reports whether the status passes filter (0 passes everything).
func (st TrackerStatus) Match(filter TrackerStatus) bool {
	return filter == 0 || st == 0 || st&filter != 0
}

// IsError reports whether the status is one of the error statuses.
func (st TrackerStatus) IsError() bool { return st&TrackerStatusError != 0 }

// MarshalJSON encodes the status name.
func (st TrackerStatus) MarshalJSON() ([]byte, error) { return json.Marshal(st.String()) }

// UnmarshalJSON decodes a status name; unknown names decode to undefined.
func (st *TrackerStatus) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*st = TrackerStatusFromString(s)
	return nil
}

// PinType says what kind of object a pin is.
type PinType uint32

// Pin types. Only DataType is produced today; the others exist for the wire
// format and for sharding.
const (
	BadType        PinType = 1 << iota
	DataType               // a normal pin
	MetaType               // the root of sharded content
	ClusterDAGType         // the cluster DAG of sharded content
	ShardType              // a shard
	AllType        = DataType | MetaType | ClusterDAGType | ShardType
)

// String returns the wire name of the pin type.
func (t PinType) String() string {
	switch t {
	case DataType:
		return "pin"
	case MetaType:
		return "meta-pin"
	case ClusterDAGType:
		return "clusterdag-pin"
	case ShardType:
		return "shard-pin"
	case AllType:
		return "all"
	default:
		return "bad-type"
	}
}

// PinTypeFromString parses a pin type name ("" means all).
func PinTypeFromString(s string) PinType {
	switch s {
	case "pin":
		return DataType
	case "meta-pin":
		return MetaType
	case "clusterdag-pin":
		return ClusterDAGType
	case "shard-pin":
		return ShardType
	case "all", "":
		return AllType
	default:
		return BadType
	}
}

// MarshalJSON encodes the type name.
func (t PinType) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// UnmarshalJSON decodes a type name.
func (t *PinType) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*t = PinTypeFromString(s)
	return nil
}

// PinMode is recursive or direct.
type PinMode int

// Pin modes.
const (
	PinModeRecursive PinMode = iota
	PinModeDirect
)

// PinModeFromString parses a mode; anything unknown is recursive.
func PinModeFromString(s string) PinMode {
	if s == "direct" {
		return PinModeDirect
	}
	return PinModeRecursive
}

// String returns the wire name of the mode.
func (m PinMode) String() string {
	if m == PinModeDirect {
		return "direct"
	}
	return "recursive"
}

// MarshalJSON encodes the mode name.
func (m PinMode) MarshalJSON() ([]byte, error) { return json.Marshal(m.String()) }

// UnmarshalJSON decodes a mode name.
func (m *PinMode) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*m = PinModeFromString(s)
	return nil
}
