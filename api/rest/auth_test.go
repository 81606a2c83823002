package rest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func authServer(t *testing.T) (*fakeCluster, func(method, target string, hdr map[string]string) result) {
	cfg := testConfig()
	cfg.BasicAuthCredentials = map[string]string{"user": "pass", "other": "secret"}
	f := newFake()
	ts := startHTTP(t, newTestServer(t, cfg, f))
	return f, func(method, target string, hdr map[string]string) result {
		return do(t, ts, method, target, nil, hdr)
	}
}

func basic(user, pass string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
}

func bearer(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// makeToken builds an HMAC JWT independently of the server code.
func makeToken(alg string, claims map[string]any, key string) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	c, _ := json.Marshal(claims)
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	newHash := sha256.New
	switch alg {
	case "HS384":
		newHash = sha512.New384
	case "HS512":
		newHash = sha512.New
	}
	m := hmac.New(newHash, []byte(key))
	m.Write([]byte(in))
	return in + "." + enc.EncodeToString(m.Sum(nil))
}

func TestAuthOff(t *testing.T) {
	ts := startHTTP(t, newTestServer(t, testConfig(), newFake()))
	if r := do(t, ts, "GET", "/id", nil, nil); r.status != 200 {
		t.Errorf("no auth: %d", r.status)
	}
	if r := do(t, ts, "GET", "/id", nil, basic("x", "y")); r.status != 200 {
		t.Errorf("ignored credentials: %d", r.status)
	}
	r := do(t, ts, "POST", "/token", nil, basic("user", "pass"))
	if r.status != 401 || r.body != errBody(401, "unauthorized") {
		t.Errorf("token without credentials: %d %q", r.status, r.body)
	}
}

func TestAuthOn(t *testing.T) {
	_, call := authServer(t)
	realm := `realm="Restricted IPFS Cluster API"`

	// No credentials: 401 with both challenges, even on unknown paths.
	for _, target := range []string{"/id", "/idx", "/pins", "/health/graph", "/token"} {
		r := call("GET", target, nil)
		if r.status != 401 || r.body != errBody(401, "unauthorized: no auth provided") {
			t.Errorf("%s: %d %q", target, r.status, r.body)
		}
		want := []string{"Bearer " + realm, "Basic " + realm}
		if got := r.header.Values("WWW-Authenticate"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: WWW-Authenticate %q", target, got)
		}
	}
	// Exemptions.
	if r := call("GET", "/health", nil); r.status != 204 {
		t.Errorf("health: %d", r.status)
	}
	if r := call("OPTIONS", "/id", nil); r.status != 405 {
		t.Errorf("OPTIONS: %d", r.status)
	}
	if r := call("POST", "/health", nil); r.status != 405 {
		t.Errorf("POST /health: %d", r.status)
	}

	// Basic.
	for _, creds := range [][2]string{{"user", "wrong"}, {"nobody", "pass"}, {"user", ""}, {"", "pass"}, {"other", "pass"}} {
		r := call("GET", "/id", basic(creds[0], creds[1]))
		if r.status != 401 || r.body != errBody(401, "unauthorized: access denied") ||
			!reflect.DeepEqual(r.header.Values("WWW-Authenticate"), []string{"Basic " + realm}) {
			t.Errorf("basic %v: %d %q %v", creds, r.status, r.body, r.header)
		}
	}
	if r := call("GET", "/id", basic("user", "pass")); r.status != 200 {
		t.Errorf("good basic: %d", r.status)
	}
	if r := call("GET", "/idx", basic("other", "secret")); r.status != 404 {
		t.Errorf("good basic, unknown path: %d", r.status)
	}
	if r := call("GET", "/id", map[string]string{"Authorization": "Digest abc"}); r.status != 401 || decodeError(t, r.body).Message != "unauthorized: no auth provided" {
		t.Errorf("other scheme: %d %q", r.status, r.body)
	}

	// Token: deterministic HS256, iss only.
	r := call("POST", "/token", basic("user", "pass"))
	if r.status != 200 {
		t.Fatalf("token: %d %q", r.status, r.body)
	}
	var tok tokenResponse
	if err := json.Unmarshal([]byte(r.body), &tok); err != nil || jsonKeys(t, r.body)[0] != "token" {
		t.Fatalf("token body %q", r.body)
	}
	want := makeToken("HS256", map[string]any{"iss": "user"}, "pass")
	if tok.Token != want {
		t.Errorf("token %s, want %s", tok.Token, want)
	}
	if !strings.HasPrefix(tok.Token, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJ1c2VyIn0.") {
		t.Errorf("token prefix %s", tok.Token)
	}
	if again := call("POST", "/token", basic("user", "pass")); again.body != r.body {
		t.Error("token not deterministic")
	}
	// Bearer.
	if r := call("GET", "/id", bearer(tok.Token)); r.status != 200 {
		t.Errorf("bearer: %d %q", r.status, r.body)
	}
	if r := call("GET", "/id", map[string]string{"Authorization": "bEaReR " + tok.Token}); r.status != 200 {
		t.Errorf("bearer case: %d", r.status)
	}
	if r := call("POST", "/token", bearer(tok.Token)); r.status != 200 || !strings.Contains(r.body, tok.Token) {
		t.Errorf("token from bearer: %d %q", r.status, r.body)
	}
	now := time.Now().Unix()
	good := []string{
		makeToken("HS384", map[string]any{"iss": "other"}, "secret"),
		makeToken("HS512", map[string]any{"iss": "user", "exp": now + 60, "nbf": now - 60, "iat": now - 60}, "pass"),
	}
	for _, tk := range good {
		if r := call("GET", "/id", bearer(tk)); r.status != 200 {
			t.Errorf("bearer %s: %d", tk, r.status)
		}
	}
	bad := []string{
		"garbage",
		"a.b.c",
		makeToken("HS256", map[string]any{"iss": "user"}, "wrong"),
		makeToken("HS256", map[string]any{"iss": "nobody"}, "pass"),
		makeToken("HS256", map[string]any{}, "pass"),
		makeToken("HS256", map[string]any{"iss": "user", "exp": now - 10}, "pass"),
		makeToken("HS256", map[string]any{"iss": "user", "nbf": now + 600}, "pass"),
		makeToken("HS256", map[string]any{"iss": "user", "iat": now + 600}, "pass"),
		makeToken("none", map[string]any{"iss": "user"}, "pass"),
		makeToken("RS256", map[string]any{"iss": "user"}, "pass"),
		strings.TrimSuffix(tok.Token, tok.Token[len(tok.Token)-2:]) + "AA",
		tok.Token + ".x",
	}
	for _, tk := range bad {
		r := call("GET", "/id", bearer(tk))
		if r.status != 401 || r.body != errBody(401, "unauthorized: invalid token") ||
			!reflect.DeepEqual(r.header.Values("WWW-Authenticate"), []string{`Bearer ` + realm + `, error="invalid_token"`}) {
			t.Errorf("bad token %q: %d %q %v", tk, r.status, r.body, r.header.Values("WWW-Authenticate"))
		}
	}
}

func TestCORS(t *testing.T) {
	ts := startHTTP(t, newTestServer(t, testConfig(), newFake()))

	// Preflight: answered by CORS with 204.
	r := do(t, ts, "OPTIONS", "/pins", nil, map[string]string{
		"Origin":                         "http://example.com",
		"Access-Control-Request-Method":  "GET",
		"Access-Control-Request-Headers": "content-type",
	})
	if r.status != 204 || r.body != "" {
		t.Fatalf("preflight: %d %q", r.status, r.body)
	}
	for k, v := range map[string]string{
		"Access-Control-Allow-Origin":      "*",
		"Access-Control-Allow-Methods":     "GET",
		"Access-Control-Allow-Headers":     "content-type",
		"Access-Control-Allow-Credentials": "true",
	} {
		if got := r.header.Get(k); got != v {
			t.Errorf("preflight %s = %q, want %q", k, got, v)
		}
	}
	if got := r.header.Get("Access-Control-Max-Age"); got != "" {
		t.Errorf("Max-Age %q", got)
	}
	if got := strings.Join(r.header.Values("Vary"), ", "); got != "Origin, Access-Control-Request-Method, Access-Control-Request-Headers" {
		t.Errorf("preflight Vary %q", got)
	}

	// Disallowed method in preflight: no allow headers.
	r = do(t, ts, "OPTIONS", "/pins", nil, map[string]string{"Origin": "http://example.com", "Access-Control-Request-Method": "POST"})
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("POST preflight: %d %v", r.status, r.header)
	}

	// Actual request.
	r = do(t, ts, "GET", "/id", nil, map[string]string{"Origin": "http://example.com"})
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "*" ||
		r.header.Get("Access-Control-Expose-Headers") != "Content-Type, X-Stream-Output, X-Chunked-Output, X-Content-Length" ||
		r.header.Get("Access-Control-Allow-Credentials") != "true" || r.header.Get("Vary") != "Origin" {
		t.Errorf("actual request: %d %v", r.status, r.header)
	}
	// Cross-origin POST with defaults: no CORS headers.
	r = do(t, ts, "POST", "/pins/recover", nil, map[string]string{"Origin": "http://example.com"})
	if r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Vary") != "Origin" {
		t.Errorf("cross-origin POST: %v", r.header)
	}

	// Configured origins are echoed; max age appears.
	cfg := testConfig()
	cfg.CORSAllowedOrigins = []string{"http://good.example"}
	cfg.CORSMaxAge = 10 * time.Minute
	ts2 := startHTTP(t, newTestServer(t, cfg, newFake()))
	r = do(t, ts2, "OPTIONS", "/id", nil, map[string]string{"Origin": "http://good.example", "Access-Control-Request-Method": "GET"})
	if r.header.Get("Access-Control-Allow-Origin") != "http://good.example" || r.header.Get("Access-Control-Max-Age") != "600" {
		t.Errorf("configured origin: %v", r.header)
	}
	r = do(t, ts2, "GET", "/id", nil, map[string]string{"Origin": "http://bad.example"})
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("bad origin: %d %v", r.status, r.header)
	}

	// With auth, preflight passes; 401s carry no CORS headers.
	cfg = testConfig()
	cfg.BasicAuthCredentials = map[string]string{"user": "pass"}
	ts3 := startHTTP(t, newTestServer(t, cfg, newFake()))
	r = do(t, ts3, "OPTIONS", "/id", nil, map[string]string{"Origin": "http://x", "Access-Control-Request-Method": "GET"})
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight with auth: %d %v", r.status, r.header)
	}
	r = do(t, ts3, "GET", "/id", nil, map[string]string{"Origin": "http://x"})
	if r.status != 401 || r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Vary") != "" {
		t.Errorf("401 with CORS headers: %d %v", r.status, r.header)
	}
}

func TestTrailingSlash(t *testing.T) {
	f := newFake()
	ts := startHTTP(t, newTestServer(t, testConfig(), f))
	cases := map[string]string{
		"/id/":                           "/id",
		"/pins/?local=true":              "/pins?local=true",
		"/pins/" + cidA + "/?local=true": "/pins/" + cidA + "?local=true",
		"/nothing/":                      "/nothing",
		"/pins/ipfs/" + cidA + "/a/":     "/pins/ipfs/" + cidA + "/a",
		"/monitor/metrics/?x=%2F&y=a+b":  "/monitor/metrics?x=%2F&y=a+b",
		"//evil.example/":                "/evil.example",
		"///evil.example/x/":             "/evil.example/x",
	}
	for target, loc := range cases {
		for _, method := range []string{"GET", "POST", "DELETE"} {
			r := do(t, ts, method, target, nil, nil)
			if r.status != 307 || r.header.Get("Location") != loc {
				t.Errorf("%s %s: %d Location %q, want %q", method, target, r.status, r.header.Get("Location"), loc)
			}
		}
	}
	// A 307 is followed with method and body kept.
	resp, err := ts.Client().Post(ts.URL+"/pins/"+cidB+"/?name=x", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || f.args("Pin") == nil {
		t.Errorf("followed redirect: %d", resp.StatusCode)
	}
}

// A user with an empty password (which the configuration refuses) could
// not authenticate with a token either: an empty key signs nothing.
func TestVerifyTokenRefusesEmptyKey(t *testing.T) {
	creds := map[string]string{"user": "pass", "u2": ""}
	now := time.Now()
	if iss, err := verifyToken(creds, makeToken("HS256", map[string]any{"iss": "user"}, "pass"), now); err != nil || iss != "user" {
		t.Fatalf("good token: %q %v", iss, err)
	}
	if iss, err := verifyToken(creds, makeToken("HS256", map[string]any{"iss": "u2"}, ""), now); err == nil {
		t.Fatalf("token signed with an empty key accepted for %q", iss)
	}
}
