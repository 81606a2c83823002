package kubo

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pincluster/pincluster/cmd/pincluster-service/servicetest"
	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/core/config"
	"github.com/pincluster/pincluster/plugins/ipfsconnector/kubo/kubotest"
)

// ipfsClusterServiceJSON is a service.json as IPFS Cluster v1.1 writes it
// for a raft peer with its ipfshttp connector (the test file of
// core/config).
const ipfsClusterServiceJSON = "../../../core/config/testdata/ipfs-cluster-v1.1-raft.json"

// TestIPFSClusterServiceJSON runs a daemon on IPFS Cluster v1.1's
// service.json, changed only where a test must: loopback ports, the kubo
// daemon's address, no data_folder (the file's is relative, to the
// working directory). The ipfshttp connector is the kubo connector.
func TestIPFSClusterServiceJSON(t *testing.T) {
	node := kubotest.Start(t, kubotest.Options{})
	b, err := os.ReadFile(ipfsClusterServiceJSON)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	section := func(top, name string) map[string]any { return doc[top][name].(map[string]any) }
	ports := []int{servicetest.FreePort(t), servicetest.FreePort(t), servicetest.FreePort(t)}
	doc["cluster"]["listen_multiaddress"] = []string{
		fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ports[0]),
		fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic", ports[0]), // as IPFS Cluster's: not listened on
	}
	section("api", "restapi")["http_listen_multiaddress"] = fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ports[1])
	raft := section("consensus", "raft")
	delete(raft, "data_folder")
	raft["listen_multiaddress"] = fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ports[2])
	section("ipfs_connector", "ipfshttp")["node_multiaddress"] = node.APIMultiaddr()

	dir := t.TempDir()
	write := func() {
		t.Helper()
		out, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, config.ServiceFile), out, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write()
	ident, err := config.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if err := ident.Save(filepath.Join(dir, config.IdentityFile)); err != nil {
		t.Fatal(err)
	}
	api := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	kuboID := node.IPFS("id", "-f", "<id>")

	pin := func(d *peerDaemon) string {
		t.Helper()
		c := node.IPFSInput(randomText(2000), "add", "-Q", "--pin=false")
		var p core.Pin
		decode(t, d.Post("/pins/"+c), 200, &p)
		d.waitStatus(c, core.TrackerStatusPinned, 30*time.Second)
		if typ := node.PinLs()[c]; typ != "recursive" {
			t.Fatalf("ipfs pin ls has %s as %q", c, typ)
		}
		return c
	}

	t.Run("the file as IPFS Cluster writes it", func(t *testing.T) {
		d := startPeer(t, dir, api)
		defer d.Stop()
		var id core.ID
		decode(t, d.Get("/id"), 200, &id)
		if id.ID.String() != ident.ID.String() || id.IPFS.ID.String() != kuboID || id.IPFS.Error != "" {
			t.Fatalf("/id: %+v (kubo is %s)", id, kuboID)
		}
		if !strings.Contains(d.Logs(), "ipfs_connector.ipfshttp") {
			t.Fatalf("the connector's logs are not named ipfs_connector.ipfshttp:\n%s", d.Logs())
		}
		pin(d)
	})

	t.Run("no allocator section", func(t *testing.T) {
		delete(doc, "allocator")
		doc["cluster"]["replication_factor_min"] = 1
		doc["cluster"]["replication_factor_max"] = 1
		write()
		d := startPeer(t, dir, api)
		defer d.Stop()
		if !strings.Contains(d.Logs(), `the allocator section is missing: using allocator.balanced with {"allocate_by":["freespace"]}`) {
			t.Fatalf("the default allocator is not logged:\n%s", d.Logs())
		}
		c := pin(d)
		var p core.Pin
		decode(t, d.Get("/allocations/"+c), 200, &p)
		if len(p.Allocations) != 1 || p.Allocations[0].String() != ident.ID.String() {
			t.Fatalf("allocations %+v", p.Allocations)
		}
	})
}
