package config

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// IdentityFile is the name of the identity file in the config folder.
const IdentityFile = "identity.json"

// Identity is the peer's key pair, kept in identity.json.
type Identity struct {
	ID         peer.ID
	PrivateKey crypto.PrivKey
}

type identityJSON struct {
	ID         string `json:"id"`
	PrivateKey string `json:"private_key"`
}

// NewIdentity generates an Ed25519 identity.
func NewIdentity() (*Identity, error) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return &Identity{ID: id, PrivateKey: priv}, nil
}

// MarshalJSON writes the identity as IPFS Cluster does: the peer ID and the
// base64 of the protobuf-marshalled private key.
func (i *Identity) MarshalJSON() ([]byte, error) {
	b, err := crypto.MarshalPrivateKey(i.PrivateKey)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(identityJSON{ID: i.ID.String(), PrivateKey: base64.StdEncoding.EncodeToString(b)}, "", "    ")
}

// UnmarshalJSON reads an identity and checks the ID matches the key.
func (i *Identity) UnmarshalJSON(b []byte) error {
	var j identityJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	kb, err := base64.StdEncoding.DecodeString(j.PrivateKey)
	if err != nil {
		return fmt.Errorf("private_key is not base64: %w", err)
	}
	priv, err := crypto.UnmarshalPrivateKey(kb)
	if err != nil {
		return fmt.Errorf("private_key: %w", err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return err
	}
	if j.ID != "" && j.ID != id.String() {
		return fmt.Errorf("id %s does not match private_key (which gives %s)", j.ID, id)
	}
	i.ID, i.PrivateKey = id, priv
	return nil
}

// LoadIdentity reads an identity file.
func LoadIdentity(path string) (*Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var i Identity
	if err := json.Unmarshal(b, &i); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &i, nil
}

// Save writes the identity file with owner-only permissions.
func (i *Identity) Save(path string) error {
	b, err := i.MarshalJSON()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), 0o600)
}
