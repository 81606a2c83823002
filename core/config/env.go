package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/pincluster/pincluster/core"
)

// envKey is the environment variable that overrides a key of the cluster
// section, as IPFS Cluster names it: CLUSTER_ and the key in upper case
// without underscores (CLUSTER_SECRET, CLUSTER_PEERNAME,
// CLUSTER_LEAVEONSHUTDOWN, …).
func envKey(jsonKey string) string {
	return "CLUSTER_" + strings.ToUpper(strings.ReplaceAll(jsonKey, "_", ""))
}

// applyEnv overrides the keys of the cluster section that have an
// environment variable set. A list takes a JSON array or a comma-separated
// string; a duration a string such as "30s"; an object (such as
// connection_manager) its JSON.
func (c *ClusterConfig) applyEnv(lookup func(string) (string, bool)) error {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if key == "" || key == "-" {
			continue
		}
		s, ok := lookup(envKey(key))
		if !ok {
			continue
		}
		field := v.Field(i)
		ft := field.Type()
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem() // an IPFS Cluster key kept only when set
		}
		var doc []byte
		switch {
		case ft.Kind() == reflect.String, ft == durationType:
			doc, _ = json.Marshal(s)
		case ft == rawMessageType:
			doc = []byte(s) // a JSON object, checked with the section
		case ft.Kind() == reflect.Slice && !strings.HasPrefix(strings.TrimSpace(s), "["):
			doc = commaList(s)
		default:
			doc = []byte(s)
		}
		if err := json.Unmarshal(doc, field.Addr().Interface()); err != nil {
			return fmt.Errorf("environment variable %s (cluster.%s): %w", envKey(key), key, err)
		}
	}
	return nil
}

// ApplyEnv overrides the keys of the cluster section that have an
// environment variable set (see envKey): init writes them into the new
// service.json, as ipfs-cluster-service init does with CLUSTER_SECRET.
func (c *ClusterConfig) ApplyEnv() error { return c.applyEnv(environment) }

// environment is the process environment, for applyEnv: an empty
// variable counts as unset, as for the CLUSTER_RESTAPI_* variables.
func environment(key string) (string, bool) {
	v := os.Getenv(key)
	return v, v != ""
}

// sectionEnv overrides the keys of a plugin's section that have an
// environment variable set, as IPFS Cluster lets every component section
// be overridden: CLUSTER_, the plugin's name and the key in upper case
// without underscores (CLUSTER_IPFSHTTP_NODEMULTIADDRESS,
// CLUSTER_RAFT_HEARTBEATTIMEOUT, …). Only the keys the section has are
// looked for (init writes them all). The value replaces a string as it is;
// a list takes a JSON array or a comma-separated string; anything else is
// JSON.
func sectionEnv(kind core.Kind, name string, raw json.RawMessage, lookup func(string) (string, bool)) (json.RawMessage, error) {
	var keys map[string]json.RawMessage
	if json.Unmarshal(raw, &keys) != nil || len(keys) == 0 {
		return raw, nil // not an object: the plugin says what is wrong
	}
	prefix := "CLUSTER_" + strings.ToUpper(strings.ReplaceAll(name, "_", "")) + "_"
	changed := false
	for key, cur := range keys {
		env := prefix + strings.ToUpper(strings.ReplaceAll(key, "_", ""))
		s, ok := lookup(env)
		if !ok {
			continue
		}
		var doc []byte
		switch c := bytes.TrimSpace(cur); {
		case len(c) > 0 && c[0] == '"':
			doc, _ = json.Marshal(s)
		case len(c) > 0 && c[0] == '[' && !strings.HasPrefix(strings.TrimSpace(s), "["):
			doc = commaList(s)
		default:
			if !json.Valid([]byte(s)) {
				return nil, fmt.Errorf("environment variable %s (%s.%s.%s): not a JSON value: %q", env, kind, name, key, s)
			}
			doc = []byte(s)
		}
		keys[key] = doc
		changed = true
	}
	if !changed {
		return raw, nil
	}
	return json.Marshal(keys)
}

// commaList is the JSON array of the comma-separated items of a variable's
// value, each trimmed, empty ones left out.
func commaList(s string) []byte {
	parts := []string{}
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	doc, _ := json.Marshal(parts)
	return doc
}
