package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// ConfigKey is the name of the REST API section inside the "api" object of
// service.json.
const ConfigKey = "restapi"

// EnvConfigKey is the prefix of the environment variables that override
// the configuration (see Config.ApplyEnvVars).
const EnvConfigKey = "cluster_restapi"

// MinMaxHeaderBytes is the smallest accepted max_header_bytes.
const MinMaxHeaderBytes = 4096

// Defaults of the REST API configuration.
const (
	DefaultHTTPListenAddr                     = "/ip4/127.0.0.1/tcp/9094"
	DefaultReadTimeout          time.Duration = 0
	DefaultReadHeaderTimeout    time.Duration = 5 * time.Second
	DefaultWriteTimeout         time.Duration = 0
	DefaultIdleTimeout          time.Duration = 120 * time.Second
	DefaultMaxHeaderBytes                     = MinMaxHeaderBytes
	DefaultCORSAllowCredentials               = true
	DefaultCORSMaxAge           time.Duration = 0
)

// Default CORS lists. They are copied into every DefaultConfig.
var (
	DefaultCORSAllowedOrigins = []string{"*"}
	DefaultCORSAllowedMethods = []string{"GET"}
	DefaultCORSAllowedHeaders = []string{}
	DefaultCORSExposedHeaders = []string{
		"Content-Type",
		"X-Stream-Output",
		"X-Chunked-Output",
		"X-Content-Length",
	}
)

// Config is the "api.restapi" section of service.json. Its JSON form uses
// the keys and defaults of IPFS Cluster's restapi section: durations are Go
// duration strings, http_listen_multiaddress is a single multiaddress string
// or a list of them, and basic_auth_credentials is null when authentication
// is disabled.
type Config struct {
	// HTTPListenAddr are the multiaddresses to listen on. Supported forms
	// are /ip4/<ip>/tcp/<port>, /ip6/<ip>/tcp/<port>,
	// /dns[4|6]/<host>/tcp/<port> and /unix/<path>.
	HTTPListenAddr []string

	// SSLCertFile and SSLKeyFile enable HTTPS when both are set. Relative
	// paths are relative to ConfigDir.
	SSLCertFile string
	SSLKeyFile  string

	// Server timeouts; 0 means none.
	ReadTimeout       time.Duration
	ReadHeaderTimeout time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration

	// MaxHeaderBytes bounds the size of request headers (at least 4096).
	MaxHeaderBytes int

	// Libp2pListenAddr, ID and PrivateKey describe a dedicated libp2p
	// host for the libp2p-http endpoint. They are kept so that a
	// configuration round-trips unchanged; this server only serves HTTP
	// listeners and ignores them.
	Libp2pListenAddr []string
	ID               string
	PrivateKey       string

	// BasicAuthCredentials maps user names to passwords. nil disables
	// authentication; an empty (non-nil) map is invalid.
	BasicAuthCredentials map[string]string

	// HTTPLogFile is the file the access log is appended to. Empty means
	// the access log goes to the server's logger (named "restapilog").
	// A relative path is relative to ConfigDir.
	HTTPLogFile string

	// Headers are added to every JSON response.
	Headers map[string][]string

	// CORS settings, handed to rs/cors.
	CORSAllowedOrigins   []string
	CORSAllowedMethods   []string
	CORSAllowedHeaders   []string
	CORSExposedHeaders   []string
	CORSAllowCredentials bool
	CORSMaxAge           time.Duration

	// ConfigDir is the folder relative file paths are resolved against.
	// It is not part of the JSON form.
	ConfigDir string
}

// DefaultConfig returns the default REST API configuration.
func DefaultConfig() Config {
	return Config{
		HTTPListenAddr:       []string{DefaultHTTPListenAddr},
		ReadTimeout:          DefaultReadTimeout,
		ReadHeaderTimeout:    DefaultReadHeaderTimeout,
		WriteTimeout:         DefaultWriteTimeout,
		IdleTimeout:          DefaultIdleTimeout,
		MaxHeaderBytes:       DefaultMaxHeaderBytes,
		BasicAuthCredentials: nil,
		HTTPLogFile:          "",
		Headers:              map[string][]string{},
		CORSAllowedOrigins:   append([]string{}, DefaultCORSAllowedOrigins...),
		CORSAllowedMethods:   append([]string{}, DefaultCORSAllowedMethods...),
		CORSAllowedHeaders:   append([]string{}, DefaultCORSAllowedHeaders...),
		CORSExposedHeaders:   append([]string{}, DefaultCORSExposedHeaders...),
		CORSAllowCredentials: DefaultCORSAllowCredentials,
		CORSMaxAge:           DefaultCORSMaxAge,
	}
}

// stringList is a JSON value that is either one string or a list of
// strings. A one-element list is written back as a plain string.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*l = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = stringList{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return errors.New("must be a string or a list of strings")
	}
	*l = ss
	return nil
}

func (l stringList) MarshalJSON() ([]byte, error) {
	if len(l) == 1 {
		return json.Marshal(l[0])
	}
	if l == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]string(l))
}

// jsonConfig is the JSON form of Config, in IPFS Cluster's key order.
type jsonConfig struct {
	HTTPListenMultiaddress stringList `json:"http_listen_multiaddress"`
	SSLCertFile            string     `json:"ssl_cert_file,omitempty"`
	SSLKeyFile             string     `json:"ssl_key_file,omitempty"`
	ReadTimeout            string     `json:"read_timeout"`
	ReadHeaderTimeout      string     `json:"read_header_timeout"`
	WriteTimeout           string     `json:"write_timeout"`
	IdleTimeout            string     `json:"idle_timeout"`
	MaxHeaderBytes         int        `json:"max_header_bytes"`

	Libp2pListenMultiaddress stringList `json:"libp2p_listen_multiaddress,omitempty"`
	ID                       string     `json:"id,omitempty"`
	PrivateKey               string     `json:"private_key,omitempty"`

	BasicAuthCredentials map[string]string   `json:"basic_auth_credentials"`
	HTTPLogFile          string              `json:"http_log_file"`
	Headers              map[string][]string `json:"headers"`

	CORSAllowedOrigins   []string `json:"cors_allowed_origins"`
	CORSAllowedMethods   []string `json:"cors_allowed_methods"`
	CORSAllowedHeaders   []string `json:"cors_allowed_headers"`
	CORSExposedHeaders   []string `json:"cors_exposed_headers"`
	CORSAllowCredentials bool     `json:"cors_allow_credentials"`
	CORSMaxAge           string   `json:"cors_max_age"`
}

func (cfg *Config) toJSONConfig() *jsonConfig {
	j := &jsonConfig{
		HTTPListenMultiaddress: stringList(cfg.HTTPListenAddr),
		SSLCertFile:            cfg.SSLCertFile,
		SSLKeyFile:             cfg.SSLKeyFile,
		ReadTimeout:            cfg.ReadTimeout.String(),
		ReadHeaderTimeout:      cfg.ReadHeaderTimeout.String(),
		WriteTimeout:           cfg.WriteTimeout.String(),
		IdleTimeout:            cfg.IdleTimeout.String(),
		MaxHeaderBytes:         cfg.MaxHeaderBytes,
		ID:                     cfg.ID,
		PrivateKey:             cfg.PrivateKey,
		BasicAuthCredentials:   cfg.BasicAuthCredentials,
		HTTPLogFile:            cfg.HTTPLogFile,
		Headers:                cfg.Headers,
		CORSAllowedOrigins:     nonNil(cfg.CORSAllowedOrigins),
		CORSAllowedMethods:     nonNil(cfg.CORSAllowedMethods),
		CORSAllowedHeaders:     nonNil(cfg.CORSAllowedHeaders),
		CORSExposedHeaders:     nonNil(cfg.CORSExposedHeaders),
		CORSAllowCredentials:   cfg.CORSAllowCredentials,
		CORSMaxAge:             cfg.CORSMaxAge.String(),
	}
	if len(cfg.Libp2pListenAddr) > 0 {
		j.Libp2pListenMultiaddress = stringList(cfg.Libp2pListenAddr)
	}
	if j.Headers == nil {
		j.Headers = map[string][]string{}
	}
	return j
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// MarshalJSON writes the configuration with the keys of service.json.
func (cfg Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(cfg.toJSONConfig())
}

// ToJSON returns the configuration as indented JSON (two spaces), the way
// service.json is written.
func (cfg Config) ToJSON() ([]byte, error) {
	return json.MarshalIndent(cfg.toJSONConfig(), "", "  ")
}

// UnmarshalJSON is LoadJSON: keys that are absent keep their defaults and
// the result is validated.
func (cfg *Config) UnmarshalJSON(b []byte) error {
	return cfg.LoadJSON(b)
}

// LoadJSON replaces cfg with the defaults overlaid with the keys present in
// raw, then validates it. ConfigDir is kept. Unknown keys are errors, so
// that a misspelt key is not taken for its default. Errors name the
// offending key ("restapi.<key>: ...").
func (cfg *Config) LoadJSON(raw []byte) error {
	def := DefaultConfig()
	def.ConfigDir = cfg.ConfigDir
	j := def.toJSONConfig()

	var values map[string]json.RawMessage
	if err := json.Unmarshal(raw, &values); err != nil {
		return fmt.Errorf("%s: configuration must be a JSON object: %w", ConfigKey, err)
	}
	rv := reflect.ValueOf(j).Elem()
	rt := rv.Type()
	known := make([]string, 0, rt.NumField())
	for i := 0; i < rt.NumField(); i++ {
		key, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		known = append(known, key)
		v, ok := values[key]
		if !ok {
			continue
		}
		if err := json.Unmarshal(v, rv.Field(i).Addr().Interface()); err != nil {
			return fmt.Errorf("%s.%s: invalid value %s: %w", ConfigKey, key, v, unwrapJSONError(err))
		}
	}
	for _, key := range slices.Sorted(maps.Keys(values)) {
		if !slices.Contains(known, key) {
			return fmt.Errorf("%s.%s: unknown key", ConfigKey, key)
		}
	}
	if err := def.applyJSONConfig(j); err != nil {
		return err
	}
	if err := def.Validate(); err != nil {
		return err
	}
	*cfg = def
	return nil
}

func unwrapJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("expected %s, got JSON %s", te.Type, te.Value)
	}
	return err
}

func (cfg *Config) applyJSONConfig(j *jsonConfig) error {
	cfg.HTTPListenAddr = []string(j.HTTPListenMultiaddress)
	cfg.SSLCertFile = j.SSLCertFile
	cfg.SSLKeyFile = j.SSLKeyFile
	durations := []struct {
		key string
		val string
		dst *time.Duration
	}{
		{"read_timeout", j.ReadTimeout, &cfg.ReadTimeout},
		{"read_header_timeout", j.ReadHeaderTimeout, &cfg.ReadHeaderTimeout},
		{"write_timeout", j.WriteTimeout, &cfg.WriteTimeout},
		{"idle_timeout", j.IdleTimeout, &cfg.IdleTimeout},
		{"cors_max_age", j.CORSMaxAge, &cfg.CORSMaxAge},
	}
	for _, d := range durations {
		if d.val == "" { // absent or empty: keep the default
			continue
		}
		v, err := time.ParseDuration(d.val)
		if err != nil {
			return fmt.Errorf("%s.%s: invalid duration %q: %w", ConfigKey, d.key, d.val, err)
		}
		*d.dst = v
	}
	if j.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	} else {
		cfg.MaxHeaderBytes = j.MaxHeaderBytes
	}
	cfg.Libp2pListenAddr = []string(j.Libp2pListenMultiaddress)
	cfg.ID = j.ID
	cfg.PrivateKey = j.PrivateKey
	cfg.BasicAuthCredentials = j.BasicAuthCredentials
	cfg.HTTPLogFile = j.HTTPLogFile
	cfg.Headers = j.Headers
	cfg.CORSAllowedOrigins = j.CORSAllowedOrigins
	cfg.CORSAllowedMethods = j.CORSAllowedMethods
	cfg.CORSAllowedHeaders = j.CORSAllowedHeaders
	cfg.CORSExposedHeaders = j.CORSExposedHeaders
	cfg.CORSAllowCredentials = j.CORSAllowCredentials
	return nil
}

// Validate checks every field. Errors name the offending key.
func (cfg *Config) Validate() error {
	for _, a := range cfg.HTTPListenAddr {
		if _, _, err := listenArgs(a); err != nil {
			return fmt.Errorf("%s.http_listen_multiaddress: %w", ConfigKey, err)
		}
	}
	for _, a := range cfg.Libp2pListenAddr {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("%s.libp2p_listen_multiaddress: invalid multiaddress %q: %w", ConfigKey, a, err)
		}
	}
	switch {
	case cfg.ReadTimeout < 0:
		return fmt.Errorf("%s.read_timeout: must not be negative", ConfigKey)
	case cfg.ReadHeaderTimeout < 0:
		return fmt.Errorf("%s.read_header_timeout: must not be negative", ConfigKey)
	case cfg.WriteTimeout < 0:
		return fmt.Errorf("%s.write_timeout: must not be negative", ConfigKey)
	case cfg.IdleTimeout < 0:
		return fmt.Errorf("%s.idle_timeout: must not be negative", ConfigKey)
	case cfg.CORSMaxAge < 0:
		return fmt.Errorf("%s.cors_max_age: must not be negative", ConfigKey)
	case cfg.MaxHeaderBytes < MinMaxHeaderBytes:
		return fmt.Errorf("%s.max_header_bytes: must be at least %d", ConfigKey, MinMaxHeaderBytes)
	case cfg.BasicAuthCredentials != nil && len(cfg.BasicAuthCredentials) == 0:
		return fmt.Errorf("%s.basic_auth_credentials: must be null or have at least one entry", ConfigKey)
	case (cfg.SSLCertFile == "") != (cfg.SSLKeyFile == ""):
		if cfg.SSLCertFile == "" {
			return fmt.Errorf("%s.ssl_cert_file: must be set when ssl_key_file is set", ConfigKey)
		}
		return fmt.Errorf("%s.ssl_key_file: must be set when ssl_cert_file is set", ConfigKey)
	}
	for u, pass := range cfg.BasicAuthCredentials {
		if u == "" {
			return fmt.Errorf("%s.basic_auth_credentials: user names must not be empty", ConfigKey)
		}
		if pass == "" {
			return fmt.Errorf("%s.basic_auth_credentials: user %q has an empty password (it also signs the user's tokens): give it one", ConfigKey, u)
		}
	}
	libp2pSet := 0
	for _, set := range []bool{len(cfg.Libp2pListenAddr) > 0, cfg.ID != "", cfg.PrivateKey != ""} {
		if set {
			libp2pSet++
		}
	}
	if libp2pSet != 0 && libp2pSet != 3 {
		return fmt.Errorf("%s.libp2p_listen_multiaddress: id, private_key and libp2p_listen_multiaddress must all be set or none", ConfigKey)
	}
	return nil
}

// ApplyEnvVars overrides fields from environment variables named
// CLUSTER_RESTAPI_<KEY WITHOUT UNDERSCORES, UPPERCASE>, as IPFS Cluster
// does: e.g. CLUSTER_RESTAPI_HTTPLISTENMULTIADDRESS (comma-separated list),
// CLUSTER_RESTAPI_READTIMEOUT, CLUSTER_RESTAPI_BASICAUTHCREDENTIALS
// ("user:pass,user2:pass2"), CLUSTER_RESTAPI_CORSALLOWEDORIGINS. getenv is
// usually os.Getenv; variables that are unset or empty are ignored. The
// result is validated.
func (cfg *Config) ApplyEnvVars(getenv func(string) string) error {
	env := func(key string) (string, bool) {
		v := getenv(strings.ToUpper(EnvConfigKey + "_" + strings.ReplaceAll(key, "_", "")))
		return v, v != ""
	}
	list := func(v string) []string {
		parts := strings.Split(v, ",")
		out := make([]string, 0, len(parts))
		for _, p := range parts {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	if v, ok := env("http_listen_multiaddress"); ok {
		cfg.HTTPListenAddr = list(v)
	}
	if v, ok := env("ssl_cert_file"); ok {
		cfg.SSLCertFile = v
	}
	if v, ok := env("ssl_key_file"); ok {
		cfg.SSLKeyFile = v
	}
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{
		{"read_timeout", &cfg.ReadTimeout},
		{"read_header_timeout", &cfg.ReadHeaderTimeout},
		{"write_timeout", &cfg.WriteTimeout},
		{"idle_timeout", &cfg.IdleTimeout},
		{"cors_max_age", &cfg.CORSMaxAge},
	} {
		if v, ok := env(d.key); ok {
			dur, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s.%s: invalid duration %q: %w", ConfigKey, d.key, v, err)
			}
			*d.dst = dur
		}
	}
	if v, ok := env("max_header_bytes"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%s.max_header_bytes: invalid integer %q", ConfigKey, v)
		}
		cfg.MaxHeaderBytes = n
	}
	if v, ok := env("basic_auth_credentials"); ok {
		creds := make(map[string]string)
		for _, pair := range list(v) {
			user, pass, found := strings.Cut(pair, ":")
			if !found {
				return fmt.Errorf("%s.basic_auth_credentials: entry %q is not user:password", ConfigKey, pair)
			}
			creds[user] = pass
		}
		cfg.BasicAuthCredentials = creds
	}
	if v, ok := env("http_log_file"); ok {
		cfg.HTTPLogFile = v
	}
	for _, l := range []struct {
		key string
		dst *[]string
	}{
		{"cors_allowed_origins", &cfg.CORSAllowedOrigins},
		{"cors_allowed_methods", &cfg.CORSAllowedMethods},
		{"cors_allowed_headers", &cfg.CORSAllowedHeaders},
		{"cors_exposed_headers", &cfg.CORSExposedHeaders},
	} {
		if v, ok := env(l.key); ok {
			*l.dst = list(v)
		}
	}
	if v, ok := env("cors_allow_credentials"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s.cors_allow_credentials: invalid boolean %q", ConfigKey, v)
		}
		cfg.CORSAllowCredentials = b
	}
	return cfg.Validate()
}

// resolvePath makes p absolute relative to ConfigDir.
func (cfg *Config) resolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) || cfg.ConfigDir == "" {
		return p
	}
	return filepath.Join(cfg.ConfigDir, p)
}

// listenArgs turns a listen multiaddress into net.Listen arguments. Only
// TCP over /ip4, /ip6 or /dns[46] and /unix sockets are accepted.
func listenArgs(addr string) (network, address string, err error) {
	m, err := ma.NewMultiaddr(addr)
	if err != nil {
		return "", "", fmt.Errorf("invalid multiaddress %q: %w", addr, err)
	}
	network, address, err = manet.DialArgs(m)
	if err != nil {
		return "", "", fmt.Errorf("unsupported listen address %q: %w", addr, err)
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
		return network, address, nil
	default:
		return "", "", fmt.Errorf("unsupported listen address %q: only tcp and unix sockets are supported", addr)
	}
}
