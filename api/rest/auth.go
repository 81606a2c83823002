package rest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"net/http"
	"strings"
	"time"
)

// authRealm is the realm announced in WWW-Authenticate headers.
const authRealm = "Restricted IPFS Cluster API"

// tokenResponse is the body of POST /token.
type tokenResponse struct {
	Token string `json:"token"`
}

// wwwAuthenticate builds a WWW-Authenticate header value.
func wwwAuthenticate(scheme, errCode string) string {
	v := scheme + ` realm="` + authRealm + `"`
	if errCode != "" {
		v += `, error="` + errCode + `"`
	}
	return v
}

// parseBearerToken returns the token of an "Authorization: Bearer <jwt>"
// header (the scheme is matched case-insensitively).
func parseBearerToken(header string) (string, bool) {
	const prefix = "Bearer "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	return header[len(prefix):], true
}

// verifyBasicAuth reports whether user and password are both non-empty and
// match a configured entry.
func verifyBasicAuth(creds map[string]string, user, password string) bool {
	if user == "" || password == "" {
		return false
	}
	want, ok := creds[user]
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1
}

// authMiddleware enforces basic_auth_credentials when they are configured.
// OPTIONS requests (CORS preflight) and GET /health are exempt. It runs
// before routing, so unknown paths answer 401 too.
func (s *Server) authMiddleware(next http.Handler) http.Handler {
	creds := s.cfg.BasicAuthCredentials
	if creds == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions || r.URL.Path == "/health" {
			next.ServeHTTP(w, r)
			return
		}
		user, pass, okBasic := r.BasicAuth()
		token, okToken := parseBearerToken(r.Header.Get("Authorization"))
		switch {
		case okBasic:
			if !verifyBasicAuth(creds, user, pass) {
				w.Header().Set("WWW-Authenticate", wwwAuthenticate("Basic", ""))
				s.sendError(w, http.StatusUnauthorized, errors.New("unauthorized: access denied"))
				return
			}
		case okToken:
			if _, err := verifyToken(creds, token, time.Now()); err != nil {
				s.logger.Debug("invalid bearer token", "error", err)
				w.Header().Set("WWW-Authenticate", wwwAuthenticate("Bearer", "invalid_token"))
				s.sendError(w, http.StatusUnauthorized, errors.New("unauthorized: invalid token"))
				return
			}
		default:
			w.Header().Add("WWW-Authenticate", wwwAuthenticate("Bearer", ""))
			w.Header().Add("WWW-Authenticate", wwwAuthenticate("Basic", ""))
			s.sendError(w, http.StatusUnauthorized, errors.New("unauthorized: no auth provided"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenHandler answers POST /token with a JWT for the authenticated user.
func (s *Server) tokenHandler(w http.ResponseWriter, r *http.Request) {
	creds := s.cfg.BasicAuthCredentials
	unauthorized := errors.New("unauthorized")
	if creds == nil {
		s.sendError(w, http.StatusUnauthorized, unauthorized)
		return
	}
	var issuer string
	if user, _, ok := r.BasicAuth(); ok {
		issuer = user
	} else if tok, ok := parseBearerToken(r.Header.Get("Authorization")); ok {
		iss, err := verifyToken(creds, tok, time.Now())
		if err != nil {
			s.sendError(w, http.StatusUnauthorized, unauthorized)
			return
		}
		issuer = iss
	} else {
		s.sendError(w, http.StatusUnauthorized, unauthorized)
		return
	}
	pass, ok := creds[issuer]
	if !ok {
		s.sendError(w, http.StatusUnauthorized, unauthorized)
		return
	}
	s.sendResponse(w, statusAuto, nil, tokenResponse{Token: signToken(issuer, pass)})
}

var b64 = base64.RawURLEncoding

// jwtHeaderHS256 is the encoded header {"alg":"HS256","typ":"JWT"}.
var jwtHeaderHS256 = b64.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// signToken returns the HS256 JWT whose only claim is {"iss":issuer},
// signed with password. Tokens are deterministic and never expire, as in
// IPFS Cluster.
func signToken(issuer, password string) string {
	claims, _ := json.Marshal(struct {
		Iss string `json:"iss"`
	}{issuer})
	signingInput := jwtHeaderHS256 + "." + b64.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(password))
	mac.Write([]byte(signingInput))
	return signingInput + "." + b64.EncodeToString(mac.Sum(nil))
}

// verifyToken checks a JWT: HMAC signing (HS256, HS384 or HS512), an iss
// claim naming a configured user, a signature made with that user's
// password, and exp/nbf/iat when present. It returns the issuer.
func verifyToken(creds map[string]string, token string, now time.Time) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("token contains an invalid number of segments")
	}
	headerJSON, err := b64.DecodeString(parts[0])
	if err != nil {
		return "", errors.New("malformed token header")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(headerJSON, &header); err != nil {
		return "", errors.New("malformed token header")
	}
	var newHash func() hash.Hash
	switch header.Alg {
	case "HS256":
		newHash = sha256.New
	case "HS384":
		newHash = sha512.New384
	case "HS512":
		newHash = sha512.New
	default:
		return "", errors.New("unexpected token signing method (not HMAC)")
	}
	claimsJSON, err := b64.DecodeString(parts[1])
	if err != nil {
		return "", errors.New("malformed token claims")
	}
	var claims struct {
		Iss string   `json:"iss"`
		Exp *float64 `json:"exp"`
		Nbf *float64 `json:"nbf"`
		Iat *float64 `json:"iat"`
	}
	if err := json.Unmarshal(claimsJSON, &claims); err != nil {
		return "", errors.New("malformed token claims")
	}
	key, ok := creds[claims.Iss]
	if !ok || key == "" {
		// An empty key would let anyone sign: never accept one.
		return "", errors.New("issuer not found")
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return "", errors.New("malformed token signature")
	}
	mac := hmac.New(newHash, []byte(key))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return "", errors.New("signature is invalid")
	}
	unix := float64(now.UnixNano()) / 1e9
	if claims.Exp != nil && unix >= *claims.Exp {
		return "", errors.New("token is expired")
	}
	if claims.Nbf != nil && unix < *claims.Nbf {
		return "", errors.New("token is not valid yet")
	}
	if claims.Iat != nil && unix < *claims.Iat {
		return "", errors.New("token used before issued")
	}
	return claims.Iss, nil
}
