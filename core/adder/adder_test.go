package adder

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/url"
	"slices"
	"strings"
	"testing"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	cid "github.com/ipfs/go-cid"
)

// CIDs produced by kubo ("ipfs add"), from its documentation and its test
// suite (test/sharness/t0040-add-and-cat.sh).
const (
	helloV0       = "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN" // "hello\n"
	helloV1       = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
	emptyDirV0    = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
	emptyFileV0   = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
	emptyFileRaw  = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	helloWorlds   = "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH" // "Hello Worlds!\n"
	helloWorldsTr = "QmUkUQgxXeggyaD5Ckv8ZqfW8wHBX6cYyeiyqvVZYzq5Bi" // same, trickle
)

func mustCid(t testing.TB, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func checkCid(t testing.TB, what string, got cid.Cid, want string) {
	t.Helper()
	if got.String() != want {
		t.Errorf("%s: got %s, want %s", what, got, want)
	}
}

func TestSingleFileV0(t *testing.T) {
	res := mustAdd(t, "", file("hello.txt", "hello\n"))
	checkCid(t, "root", res.root, helloV0)
	want := []Output{{Name: "hello.txt", Cid: mustCid(t, helloV0), Size: 14}}
	if !slices.Equal(res.outputs, want) {
		t.Fatalf("outputs: got %v, want %v", res.outputs, want)
	}
	if len(res.progress) != 0 {
		t.Errorf("progress events without progress=true: %v", res.progress)
	}
	if got := res.sink.cat(t, res.root); string(got) != "hello\n" {
		t.Errorf("read back %q", got)
	}
}

func TestSingleFileV1(t *testing.T) {
	res := mustAdd(t, "cid-version=1", file("hello.txt", "hello\n"))
	checkCid(t, "root", res.root, helloV1)
	want := []Output{{Name: "hello.txt", Cid: mustCid(t, helloV1), Size: 6}}
	if !slices.Equal(res.outputs, want) {
		t.Fatalf("outputs: got %v, want %v", res.outputs, want)
	}
	// raw-leaves=false given explicitly wins over the implied value.
	res = mustAdd(t, "cid-version=1&raw-leaves=false", file("hello.txt", "hello\n"))
	if res.root.Prefix().Codec != cid.DagProtobuf || res.root.Version() != 1 {
		t.Errorf("cid-version=1&raw-leaves=false: got %s", res.root)
	}
}

func TestKuboFileVectors(t *testing.T) {
	const hw = "Hello Worlds!\n"
	cases := []struct {
		query, data, want string
	}{
		{"", hw, helloWorlds},
		{"chunker=rabin", hw, helloWorlds},
		{"chunker=size-64", hw, helloWorlds},
		{"chunker=rabin-36-512-1024", hw, helloWorlds},
		{"chunker=buzhash", hw, helloWorlds},
		{"layout=trickle", hw, helloWorldsTr},
		{"", "Helloo Worlds!\n", "Qmf35k66MZNW2GijohUmXQEWKZU4cCGTCwK6idfnt152wJ"},
		{"", "Hello Venus!\n", "QmU5kp3BH3B8tnWUU2Pikdb2maksBNkb92FHRr56hyghh4"},
		{"", "Hello Mars!\n", "QmPrrHqJzto9m7SyiRzarwkqPcCSsKR2EB1AyqJfe8L8tN"},
		{"", "Hello Jupiter!\n", "QmUnvPcBctVTAcJpigv6KMqDvmDewksPWrNVoy1E1WP5fh"},
		{"", "Hello Neptune!\nHello Pluton!", "QmZDhWpi8NvKrekaYYhxKCdNVGWsFFe1CREnAjP1QbPaB3"},
		{"", "IPFS\n", "QmdFyxZXsFiP4csgfM5uPu99AvFiKH62CSPDw5TP92nr7w"},
		{"", "", emptyFileV0},
		{"raw-leaves=true", "", emptyFileRaw},
		{"cid-version=1", "", emptyFileRaw},
		{"raw-leaves=true", "Hello Mars!\n", "bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4"},
		{"cid-version=1&raw-leaves=false", "Hello Mars!\n", "bafybeiawta2ntdmsy24aro35w3homzl4ak7svr3si7l7gesvq4erglyye4"},
		{"hash=blake2b-256", "Hello Mars!\n", "bafk2bzaceaqcxw46uzkyd2jmczoogof6pnkqt4dpiv3pwkunsv4g5rkkmecie"},
	}
	for _, tc := range cases {
		t.Run(tc.query+"/"+tc.want, func(t *testing.T) {
			res := mustAdd(t, tc.query, file("f", tc.data))
			checkCid(t, "root", res.root, tc.want)
			if len(res.outputs) != 1 || res.outputs[0].Name != "f" || !res.outputs[0].Cid.Equals(res.root) {
				t.Errorf("outputs: %v", res.outputs)
			}
			if got := res.sink.cat(t, res.root); string(got) != tc.data {
				t.Errorf("read back %q", got)
			}
		})
	}

	// kubo prints the CIDv0 "base32 test\n" file as CIDv1 with
	// --cid-base=base32: same multihash.
	res := mustAdd(t, "", file("base32-test.txt", "base32 test\n"))
	v1 := cid.NewCidV1(cid.DagProtobuf, res.root.Hash())
	checkCid(t, "base32", v1, "bafybeibyosqxljd2eptb4ebbtvk7pb4aoxzqa6ttdsflty6rsslz5y6i34")
}

func TestMultipleTopLevelFiles(t *testing.T) {
	res := mustAdd(t, "",
		file("hello.txt", "Hello Worlds!\n"),
		file("hello2.txt", "Helloo Worlds!\n"))
	if got := res.names(); !slices.Equal(got, []string{"hello.txt", "hello2.txt"}) {
		t.Fatalf("names: %v", got)
	}
	checkCid(t, "first", res.outputs[0].Cid, helloWorlds)
	checkCid(t, "second", res.outputs[1].Cid, "Qmf35k66MZNW2GijohUmXQEWKZU4cCGTCwK6idfnt152wJ")
	checkCid(t, "root (last entry)", res.root, "Qmf35k66MZNW2GijohUmXQEWKZU4cCGTCwK6idfnt152wJ")
}

func planets() []entry {
	return []entry{
		dir("planets"),
		file("planets/mars.txt", "Hello Mars!\n"),
		file("planets/venus.txt", "Hello Venus!\n"),
	}
}

func TestKuboDirectoryVectors(t *testing.T) {
	cases := []struct {
		query, planets, mars, venus string
	}{
		{"", "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY", "QmPrrHqJzto9m7SyiRzarwkqPcCSsKR2EB1AyqJfe8L8tN", "QmU5kp3BH3B8tnWUU2Pikdb2maksBNkb92FHRr56hyghh4"},
		{"raw-leaves=true", "QmfWfQfKCY5Ukv9peBbxM5vqWM9BzmqUSXvdCgjT2wsiBT", "bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4", "bafkreihfsphazrk2ilejpekyltjeh5k4yvwgjuwg26ueafohqioeo3sdca"},
		{"cid-version=1", "bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi", "bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4", "bafkreihfsphazrk2ilejpekyltjeh5k4yvwgjuwg26ueafohqioeo3sdca"},
		{"cid-version=1&raw-leaves=false", "bafybeif5tuep5ap2d7zyhbktucey75aoacxufgt6i3v4gebmixyipnyp7y", "bafybeiawta2ntdmsy24aro35w3homzl4ak7svr3si7l7gesvq4erglyye4", "bafybeicvkvhs2fr75ynebtdjqpgm4g2fc63abqbmysupwpmcjl4gx7mzrm"},
		{"hash=blake2b-256", "bafykbzaceaptbcs7ik5mdfpot3b4ackvxlwh7loc5jcrtkayf64ukl7zyk46e", "bafk2bzaceaqcxw46uzkyd2jmczoogof6pnkqt4dpiv3pwkunsv4g5rkkmecie", "bafk2bzacebxnke2fb5mgzxyjuuavvcfht4fd3gvn4klkujz6k72wboynhuvfw"},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			res := mustAdd(t, tc.query, planets()...)
			if got := res.names(); !slices.Equal(got, []string{"planets/mars.txt", "planets/venus.txt", "planets"}) {
				t.Fatalf("names: %v", got)
			}
			checkCid(t, "mars", res.outputs[0].Cid, tc.mars)
			checkCid(t, "venus", res.outputs[1].Cid, tc.venus)
			checkCid(t, "planets", res.outputs[2].Cid, tc.planets)
			checkCid(t, "root", res.root, tc.planets)
			checkSizes(t, res)
		})
	}
}

// checkSizes verifies the Size of every output against the stored blocks.
func checkSizes(t *testing.T, res result) {
	t.Helper()
	for _, o := range res.outputs {
		nd := res.sink.node(t, o.Cid)
		size, err := nd.Size()
		if err != nil {
			t.Fatal(err)
		}
		if size != o.Size {
			t.Errorf("%s: size %d, stored node says %d", o.Name, o.Size, size)
		}
		if pn, ok := nd.(*dag.ProtoNode); ok {
			sum := uint64(len(pn.RawData()))
			for _, l := range pn.Links() {
				sum += l.Size
			}
			if sum != o.Size {
				t.Errorf("%s: size %d, want serialized size plus link sizes %d", o.Name, o.Size, sum)
			}
		}
	}
}

func TestNestedDirectoryOrder(t *testing.T) {
	// kubo's "ipfs add -r moons": files as added, then directories
	// bottom-up.
	res := mustAdd(t, "",
		dir("moons"),
		dir("moons/jupiter"),
		file("moons/jupiter/europa.txt", "Hello Europa!\n"),
		file("moons/mercury.txt", "hey youre no moon!\n"),
		dir("moons/saturn"),
		file("moons/saturn/titan.txt", "Hello Titan!\n"),
	)
	want := []struct{ cid, name string }{
		{"Qmbjg7zWdqdMaK2BucPncJQDxiALExph5k3NkQv5RHpccu", "moons/jupiter/europa.txt"},
		{"QmUJjVtnN8YEeYcS8VmUeWffTWhnMQAkk5DzZdKnPhqUdK", "moons/mercury.txt"},
		{"QmZzppb9WHn552rmRqpPfgU5FEiHH6gDwi3MrB9cTdPwdb", "moons/saturn/titan.txt"},
		{"QmS5mZddhFPLWFX3w6FzAy9QxyYkaxvUpsWCtZ3r7jub9J", "moons/jupiter"},
		{"QmaMagZT4rTE7Nonw8KGSK4oe1bh533yhZrCo1HihSG8FK", "moons/saturn"},
		{"QmVKvomp91nMih5j6hYBA8KjbiaYvEetU2Q7KvtZkLe9nQ", "moons"},
	}
	if len(res.outputs) != len(want) {
		t.Fatalf("outputs:\n%s", res)
	}
	for i, w := range want {
		if res.outputs[i].Name != w.name || res.outputs[i].Cid.String() != w.cid {
			t.Errorf("output %d: got %s %s, want %s %s", i, res.outputs[i].Cid, res.outputs[i].Name, w.cid, w.name)
		}
	}
	checkCid(t, "root", res.root, "QmVKvomp91nMih5j6hYBA8KjbiaYvEetU2Q7KvtZkLe9nQ")
	checkSizes(t, res)

	// Implicit directories (no part of their own) give the same DAG.
	res2 := mustAdd(t, "",
		file("moons/jupiter/europa.txt", "Hello Europa!\n"),
		file("moons/mercury.txt", "hey youre no moon!\n"),
		file("moons/saturn/titan.txt", "Hello Titan!\n"),
	)
	if !res2.root.Equals(res.root) || !slices.Equal(res2.outputs, res.outputs) {
		t.Errorf("implicit directories:\n%s", res2)
	}
}

func TestCurrentDirVector(t *testing.T) {
	res := mustAdd(t, "",
		dir("test_current_dir"),
		dir("test_current_dir/hello"),
		file("test_current_dir/hello/world", "World\n"),
		file("test_current_dir/hey", "Hey\n"),
	)
	checkCid(t, "root", res.root, "QmZQWnfcqJ6hNkkPvrY9Q5X39GP3jUnUbAV4AbmbbR3Cb1")
	if got := res.names(); !slices.Equal(got, []string{"test_current_dir/hello/world", "test_current_dir/hey", "test_current_dir/hello", "test_current_dir"}) {
		t.Errorf("names: %v", got)
	}
}

func TestEmptyDirectories(t *testing.T) {
	res := mustAdd(t, "", dir("empty"))
	checkCid(t, "empty dir", res.root, emptyDirV0)
	if len(res.outputs) != 1 || res.outputs[0].Name != "empty" || res.outputs[0].Size != 4 {
		t.Errorf("outputs: %v", res.outputs)
	}

	res = mustAdd(t, "cid-version=1", dir("empty"))
	checkCid(t, "empty dir v1", res.root, "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354")

	// Nested empty directories: a/b/c.
	res = mustAdd(t, "", dir("a"), dir("a/b"), dir("a/b/c"))
	if got := res.names(); !slices.Equal(got, []string{"a/b/c", "a/b", "a"}) {
		t.Fatalf("names: %v", got)
	}
	checkCid(t, "a/b/c", res.outputs[0].Cid, emptyDirV0)
	b := res.sink.node(t, res.outputs[1].Cid)
	if len(b.Links()) != 1 || b.Links()[0].Name != "c" || b.Links()[0].Cid.String() != emptyDirV0 || b.Links()[0].Size != 4 {
		t.Errorf("a/b links: %v", b.Links())
	}
	checkSizes(t, res)

	// Wrapping nothing gives the empty directory.
	res = mustAdd(t, "wrap-with-directory=true")
	checkCid(t, "wrapped nothing", res.root, emptyDirV0)
	if len(res.outputs) != 1 || res.outputs[0].Name != "" {
		t.Errorf("outputs: %v", res.outputs)
	}
}

func TestWrapWithDirectory(t *testing.T) {
	// Wrapping mars.txt and venus.txt makes the planets directory.
	res := mustAdd(t, "wrap-with-directory=true",
		file("mars.txt", "Hello Mars!\n"),
		file("venus.txt", "Hello Venus!\n"))
	if got := res.names(); !slices.Equal(got, []string{"mars.txt", "venus.txt", ""}) {
		t.Fatalf("names: %v", got)
	}
	checkCid(t, "wrapper", res.root, "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY")
	checkCid(t, "last output", res.outputs[2].Cid, "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY")

	// Wrapping a file and a directory: files first, then directories
	// bottom-up, then the wrapper.
	entries := append([]entry{file("hello.txt", "Hello Worlds!\n")}, planets()...)
	res = mustAdd(t, "wrap-with-directory=true", entries...)
	if got := res.names(); !slices.Equal(got, []string{"hello.txt", "planets/mars.txt", "planets/venus.txt", "planets", ""}) {
		t.Fatalf("names: %v", got)
	}
	checkCid(t, "planets", res.outputs[3].Cid, "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY")
	root := res.sink.node(t, res.root)
	links := root.Links()
	if len(links) != 2 || links[0].Name != "hello.txt" || links[1].Name != "planets" ||
		links[0].Cid.String() != helloWorlds || !links[1].Cid.Equals(res.outputs[3].Cid) ||
		links[1].Size != res.outputs[3].Size {
		t.Errorf("wrapper links: %v", links)
	}
	fsn, err := ft.ExtractFSNode(root)
	if err != nil || fsn.Type() != ft.TDirectory {
		t.Errorf("wrapper is not a directory: %v", err)
	}
	checkSizes(t, res)

	// A nameless file under the wrapper is linked under its CID.
	res = mustAdd(t, "wrap-with-directory=true", file("", "Hello Worlds!\n"))
	root = res.sink.node(t, res.root)
	if len(root.Links()) != 1 || root.Links()[0].Name != helloWorlds {
		t.Errorf("wrapper links: %v", root.Links())
	}
}

func TestSymlinks(t *testing.T) {
	res := mustAdd(t, "",
		dir("d"),
		file("d/target.txt", "Hello Worlds!\n"),
		symlink("d/link", "target.txt"),
	)
	if got := res.names(); !slices.Equal(got, []string{"d/target.txt", "d/link", "d"}) {
		t.Fatalf("names: %v", got)
	}
	nd := res.sink.node(t, res.outputs[1].Cid)
	fsn, err := ft.ExtractFSNode(nd)
	if err != nil {
		t.Fatal(err)
	}
	if fsn.Type() != ft.TSymlink || string(fsn.Data()) != "target.txt" {
		t.Errorf("symlink node: type %v data %q", fsn.Type(), fsn.Data())
	}
	want, _ := ft.SymlinkData("target.txt")
	if !bytes.Equal(nd.(*dag.ProtoNode).Data(), want) {
		t.Errorf("symlink data differs from kubo's encoding")
	}
	checkSizes(t, res)

	// A top-level symlink is its own root.
	res = mustAdd(t, "cid-version=1", symlink("l", "/etc/hosts"))
	if res.root.Version() != 1 || res.root.Prefix().Codec != cid.DagProtobuf || len(res.outputs) != 1 {
		t.Errorf("top-level symlink: %s", res)
	}
}

// TestKubo5MB checks multi-chunk files against kubo's test vectors for
// "random 5242880 41" (20 chunks of 256 KiB).
func TestKubo5MB(t *testing.T) {
	h := sha1.New()
	if _, err := io.Copy(h, newPseudoRandom(5242880, 41)); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != "5620fb92eb5a49c9986b5c6844efda37e471660e" {
		t.Fatalf("test data generator is wrong: sha1 %s", got)
	}

	cases := []struct{ query, want string }{
		{"", "QmSr7FqYkxYWGoSfy8ZiaMWQ5vosb18DQGCzjwEQnVHkTb"},
		{"raw-leaves=true", "QmbdLHCmdi48eM8T7D67oXjA1S2Puo8eMfngdHhdPukFd6"},
		{"cid-version=1", "bafybeigfnx3tka2rf5ovv2slb7ymrt4zbwa3ryeqibe6fipyt5vgsrli3u"},
		{"cid-version=1&raw-leaves=false", "bafybeieyifrgpjn3yengthr7qaj72ozm2aq3wm53srgeprc43w67qpvfqa"},
		{"hash=blake2b-256", "bafykbzacebnmjcl4sn37b3ehtibvf263oun2w6idghenrvlpehq5w5jqyvhjo"},
		{"hash=blake2b-256&raw-leaves=false", "bafykbzaceaxiiykzgpbhnzlecffqm3zbuvhujyvxe5scltksyafagkyw4rjn2"},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			res := mustAdd(t, tc.query, stream("bigfile", newPseudoRandom(5242880, 41)))
			checkCid(t, "root", res.root, tc.want)
			root := res.sink.node(t, res.root)
			if _, ok := root.(*dag.ProtoNode); !ok || len(root.Links()) != 20 {
				t.Errorf("root is not a dag-pb node with 20 links: %T, %d links", root, len(root.Links()))
			}
			leafCodec := root.Links()[0].Cid.Prefix().Codec
			if raw := strings.Contains(tc.query, "raw-leaves=true") || (tc.query != "" && !strings.Contains(tc.query, "raw-leaves=false")); raw != (leafCodec == cid.Raw) {
				t.Errorf("leaf codec 0x%x with %q", leafCodec, tc.query)
			}
			checkSizes(t, res)
			if len(res.sink.blocks) != 21 {
				t.Errorf("%d blocks stored, want 21", len(res.sink.blocks))
			}
		})
	}

	// Deterministic, and readable back.
	a := mustAdd(t, "raw-leaves=true", stream("bigfile", newPseudoRandom(5242880, 41)))
	b := mustAdd(t, "raw-leaves=true", stream("bigfile", newPseudoRandom(5242880, 41)))
	if !a.root.Equals(b.root) {
		t.Errorf("not deterministic: %s, %s", a.root, b.root)
	}
	got := sha1.Sum(a.sink.cat(t, a.root))
	if hex.EncodeToString(got[:]) != "5620fb92eb5a49c9986b5c6844efda37e471660e" {
		t.Errorf("content read back differs")
	}
}

// TestKubo100MB checks a file needing two levels of links (400 chunks of
// 256 KiB, 174 links per node) against kubo's "random 104857600 42".
func TestKubo100MB(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MB import skipped in short mode")
	}
	cases := []struct{ query, want string }{
		{"", "QmU9SWAPPmNEKZB8umYMmjYvN7VyHqABNvdA6GUi4MMEz3"},
		{"cid-version=1", "bafybeidkj5ecbhrqmzrcee2rw7qwsx24z3364qya3fnp2ktkg2tnsrewhi"},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			sink := &countingSink{}
			root, err := Add(context.Background(),
				streamBody(t, []entry{stream("bigfile", newPseudoRandom(104857600, 42))}),
				mustParse(t, tc.query), sink, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkCid(t, "root", root, tc.want)
		})
	}
}

func TestTrickleLargeFile(t *testing.T) {
	a := mustAdd(t, "layout=trickle", stream("f", newPseudoRandom(3<<20, 7)))
	b := mustAdd(t, "layout=trickle", stream("f", newPseudoRandom(3<<20, 7)))
	c := mustAdd(t, "", stream("f", newPseudoRandom(3<<20, 7)))
	if !a.root.Equals(b.root) {
		t.Errorf("trickle not deterministic")
	}
	if a.root.Equals(c.root) {
		t.Errorf("trickle and balanced gave the same root")
	}
	want, _ := io.ReadAll(newPseudoRandom(3<<20, 7))
	if got := a.sink.cat(t, a.root); !bytes.Equal(got, want) {
		t.Errorf("trickle content read back differs")
	}
	// Trickle leaves without raw-leaves are UnixFS "raw" nodes, as kubo.
	leaf := a.sink.node(t, a.sink.node(t, a.root).Links()[0].Cid)
	fsn, err := ft.ExtractFSNode(leaf)
	if err != nil || fsn.Type() != ft.TRaw {
		t.Errorf("trickle leaf: %v %v", fsn, err)
	}
}

func TestProgress(t *testing.T) {
	const size = 1<<20 + 1000
	res := mustAdd(t, "progress=true",
		dir("d"),
		stream("d/big", newPseudoRandom(size, 1)),
		file("d/empty", ""),
	)
	if got := res.names(); !slices.Equal(got, []string{"d/big", "d/empty", "d"}) {
		t.Fatalf("names: %v", got)
	}
	// Progress events name files relative to the top-level entry, as
	// IPFS Cluster does.
	var big []uint64
	sawEmpty := false
	for _, p := range res.progress {
		switch p.Name {
		case "big":
			big = append(big, p.Bytes)
		case "empty":
			sawEmpty = p.Bytes == 0
		default:
			t.Errorf("progress for %q", p.Name)
		}
		if p.Cid.Defined() || p.Size != 0 {
			t.Errorf("progress event with cid or size: %v", p)
		}
	}
	if len(big) < 4 || big[len(big)-1] != size {
		t.Fatalf("progress of d/big: %v", big)
	}
	for i := 1; i < len(big); i++ {
		if big[i] <= big[i-1] || (i < len(big)-1 && big[i]-big[i-1] < ProgressInterval) {
			t.Errorf("progress of d/big: %v", big)
		}
	}
	if !sawEmpty {
		t.Errorf("no final progress event for the empty file")
	}

	// Events come in order: progress of a file before its final event.
	// The progress of a top-level file has an empty name.
	all := allEvents(t, "progress=true", file("a", "aaa"), file("b", "bb"))
	if len(all) != 4 || all[0] != (Output{Bytes: 3}) || all[1].Name != "a" || all[1].IsProgress() ||
		all[2] != (Output{Bytes: 2}) || all[3].Name != "b" || all[3].IsProgress() {
		t.Errorf("events: %v", all)
	}

	// When wrapping, the wrapping directory is the top-level entry: files
	// are named by their whole path.
	res = mustAdd(t, "progress=true&wrap-with-directory=true",
		file("a.txt", "a"), dir("d"), file("d/b.txt", "bb"), dir("d/e"), file("d/e/c.txt", "ccc"))
	var names []string
	for _, p := range res.progress {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"a.txt", "d/b.txt", "d/e/c.txt"}) {
		t.Errorf("progress names when wrapping: %q", names)
	}
	// Without wrapping, relative to each top-level directory.
	res = mustAdd(t, "progress=true", dir("d"), file("d/b.txt", "bb"), dir("d/e"), file("d/e/c.txt", "ccc"), file("top.txt", "t"))
	names = nil
	for _, p := range res.progress {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"b.txt", "e/c.txt", ""}) {
		t.Errorf("progress names: %q", names)
	}
}

// TestProgressAppendixC replays the add with progress of the spec's
// Appendix C (captured from IPFS Cluster 1.1.6): hello.txt holding
// "hello\n" gives {"name":"","cid":null,"bytes":6} then the file.
func TestProgressAppendixC(t *testing.T) {
	all := allEvents(t, "progress=true", file("hello.txt", "hello\n"))
	want := []Output{{Name: "", Bytes: 6}, {Name: "hello.txt", Cid: mustCid(t, helloV0), Size: 14}}
	if !slices.Equal(all, want) {
		t.Errorf("events:\n got %v\nwant %v", all, want)
	}
}

// allEvents runs Add and returns every event it emitted, in order.
func allEvents(t *testing.T, query string, entries ...entry) []Output {
	t.Helper()
	var all []Output
	_, err := Add(context.Background(), streamBody(t, entries), mustParse(t, query), newMemSink(), func(o Output) error {
		all = append(all, o)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func mustParse(t testing.TB, query string) Params {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseParams(q)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHAMTDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("large directory skipped in short mode")
	}
	// Each link counts name length + 34 bytes of CIDv0 towards the
	// 256 KiB threshold: 5000 entries with 20-byte names exceed it.
	const n = 5000
	entries := []entry{dir("big")}
	for i := range n {
		entries = append(entries, file(fmt.Sprintf("big/file-%015d", i), fmt.Sprintf("%d\n", i)))
	}
	res := mustAdd(t, "", entries...)
	if len(res.outputs) != n+1 || res.outputs[n].Name != "big" {
		t.Fatalf("%d outputs", len(res.outputs))
	}
	root := res.sink.node(t, res.root)
	fsn, err := ft.ExtractFSNode(root)
	if err != nil {
		t.Fatal(err)
	}
	if fsn.Type() != ft.THAMTShard {
		t.Fatalf("big directory is %v, not a HAMT shard", fsn.Type())
	}
	d, err := uio.NewDirectoryFromNode(res.sink.dag(), root)
	if err != nil {
		t.Fatal(err)
	}
	links, err := d.Links(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != n {
		t.Errorf("HAMT holds %d entries, want %d", len(links), n)
	}
	nd, err := d.Find(context.Background(), "file-000000000004242")
	if err != nil {
		t.Fatal(err)
	}
	if got := res.sink.cat(t, nd.Cid()); string(got) != "4242\n" {
		t.Errorf("file-4242 reads %q", got)
	}
	checkSizes(t, res)

	// Deterministic.
	res2 := mustAdd(t, "", entries...)
	if !res2.root.Equals(res.root) {
		t.Errorf("HAMT not deterministic")
	}

	// A HAMT subdirectory is reported among the directories, before its
	// parent.
	sub := []entry{dir("top"), file("top/a", "a")}
	for _, e := range entries {
		e.path = "top/" + e.path
		sub = append(sub, e)
	}
	res3 := mustAdd(t, "", sub...)
	names := res3.names()
	if !slices.Equal(names[len(names)-2:], []string{"top/big", "top"}) {
		t.Errorf("last names: %v", names[len(names)-2:])
	}
	if !res3.outputs[len(names)-2].Cid.Equals(res.root) {
		t.Errorf("nested HAMT differs")
	}
}

func TestDuplicateEntry(t *testing.T) {
	_, err := add(t, "", dir("d"), file("d/a", "1"), file("d/b", "2"), dir("d/b"))
	if err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("got %v", err)
	}
	_, err = add(t, "wrap-with-directory=true", file("a", "1"), file("a", "2"))
	if err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("got %v", err)
	}
	// Without wrapping, top-level entries are separate DAGs.
	res := mustAdd(t, "", file("a", "Hello Worlds!\n"), file("a", "Helloo Worlds!\n"))
	checkCid(t, "root", res.root, "Qmf35k66MZNW2GijohUmXQEWKZU4cCGTCwK6idfnt152wJ")
}

func TestBatching(t *testing.T) {
	// Small files: batches are limited by count.
	var entries []entry
	entries = append(entries, dir("d"))
	for i := range 300 {
		entries = append(entries, file(fmt.Sprintf("d/%d", i), fmt.Sprintf("file %d", i)))
	}
	res := mustAdd(t, "", entries...)
	if res.sink.maxBlocks > DefaultBatchBlocks {
		t.Errorf("batch of %d blocks", res.sink.maxBlocks)
	}
	if res.sink.calls < 301/DefaultBatchBlocks {
		t.Errorf("%d calls to the sink for 301 blocks", res.sink.calls)
	}
	if res.sink.received != 301 {
		t.Errorf("%d blocks received, want 301", res.sink.received)
	}

	// Large chunks: batches are limited by size.
	res = mustAdd(t, "chunker=size-1000000", stream("f", newPseudoRandom(20<<20, 3)))
	if res.sink.maxBytes > DefaultBatchBytes+1000000 {
		t.Errorf("batch of %d bytes", res.sink.maxBytes)
	}
	if res.sink.calls < 5 {
		t.Errorf("%d calls to the sink", res.sink.calls)
	}

	// Identical blocks are sent once: 1024 identical leaves, 5 identical
	// full intermediate nodes (174 links), a partial one and the root.
	res = mustAdd(t, "chunker=size-1024", stream("zeros", io.LimitReader(zeroReader{}, 1<<20)))
	if res.sink.received != 4 {
		t.Errorf("%d blocks received for a file of identical chunks, want 4", res.sink.received)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestSinkAndEmitErrors(t *testing.T) {
	sink := newMemSink()
	sink.failOnCall = 2
	_, err := Add(context.Background(), streamBody(t, []entry{stream("f", newPseudoRandom(20<<20, 1))}),
		DefaultParams(), sink, nil)
	if !errors.Is(err, errSinkFull) || IsRequestError(err) {
		t.Errorf("sink error: got %v", err)
	}

	errStop := errors.New("client went away")
	_, err = Add(context.Background(), streamBody(t, planets()), DefaultParams(), newMemSink(), func(o Output) error {
		return errStop
	})
	if !errors.Is(err, errStop) || IsRequestError(err) {
		t.Errorf("emit error: got %v", err)
	}

	p := DefaultParams()
	p.Progress = true
	_, err = Add(context.Background(), streamBody(t, []entry{stream("f", newPseudoRandom(2<<20, 1))}), p, newMemSink(), func(o Output) error {
		if o.IsProgress() && o.Bytes > 300000 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Errorf("emit error on progress: got %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	_, err = Add(ctx, streamBody(t, []entry{stream("f", newPseudoRandom(20<<20, 1))}), p, newMemSink(), func(o Output) error {
		if o.IsProgress() && o.Bytes > 1<<20 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v", err)
	}
}

func TestUnsupportedOptionsAreRefused(t *testing.T) {
	for query, want := range map[string]error{"nocopy=true": ErrNoCopyNotSupported, "shard=true": ErrShardNotSupported} {
		if _, err := add(t, query, file("a.txt", "whatever")); !errors.Is(err, want) || !IsRequestError(err) {
			t.Errorf("%s: got %v", query, err)
		}
	}
	res := mustAdd(t, "nocopy=false&shard=false", file("hello.txt", "hello\n"))
	checkCid(t, "nocopy=false", res.root, helloV0)
}

func TestMalformedBodies(t *testing.T) {
	body, boundary := bodyBytes(t, append(planets(), stream("big", newPseudoRandom(1<<20, 9))))

	for _, cut := range []int{len(body) - 1, len(body) - 10, len(body) - 200000, 200, 100, 50, 10, 1, 0} {
		root, err := Add(context.Background(), multipart.NewReader(bytes.NewReader(body[:cut]), boundary),
			DefaultParams(), newMemSink(), nil)
		if err == nil {
			t.Errorf("body truncated at %d/%d: no error (root %s)", cut, len(body), root)
		} else if !IsRequestError(err) {
			t.Errorf("body truncated at %d/%d: %v is not a request error", cut, len(body), err)
		}
	}
	// Truncated in the middle of a file that is the last part: the
	// chunker must not take the truncation for the end of the file.
	body1, boundary1 := bodyBytes(t, []entry{file("f", strings.Repeat("x", 5000))})
	_, err := Add(context.Background(), multipart.NewReader(bytes.NewReader(body1[:len(body1)-2000]), boundary1),
		DefaultParams(), newMemSink(), nil)
	if !errors.Is(err, ErrTruncated) {
		t.Errorf("truncated file: got %v", err)
	}

	// Wrong boundary, no parts.
	if _, err := Add(context.Background(), multipart.NewReader(bytes.NewReader(body), "nope"), DefaultParams(), newMemSink(), nil); err == nil {
		t.Errorf("wrong boundary: no error")
	}
	empty, b := bodyBytes(t, nil)
	if _, err := Add(context.Background(), multipart.NewReader(bytes.NewReader(empty), b), DefaultParams(), newMemSink(), nil); !errors.Is(err, ErrNoFiles) {
		t.Errorf("no parts: got %v", err)
	}

	// Too deep.
	deep := strings.Repeat("d/", MaxDepth+1) + "f"
	if _, err := add(t, "", file(deep, "x")); !errors.Is(err, ErrTooDeep) {
		t.Errorf("deep nesting: got %v", err)
	}

	// Bad Content-Type.
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	pw, _ := w.CreatePart(map[string][]string{
		"Content-Disposition": {`form-data; name="file"; filename="x"`},
		"Content-Type":        {"text/plain; ===="},
	})
	pw.Write([]byte("x"))
	w.Close()
	if _, err := Add(context.Background(), multipart.NewReader(&buf, w.Boundary()), DefaultParams(), newMemSink(), nil); err == nil {
		t.Errorf("bad content type: no error")
	}
}

func TestBadArguments(t *testing.T) {
	body, boundary := bodyBytes(t, []entry{file("a", "a")})
	mr := func() *multipart.Reader { return multipart.NewReader(bytes.NewReader(body), boundary) }
	if _, err := Add(context.Background(), nil, DefaultParams(), newMemSink(), nil); err == nil {
		t.Error("nil body: no error")
	}
	if _, err := Add(context.Background(), mr(), DefaultParams(), nil, nil); err == nil {
		t.Error("nil sink: no error")
	}
	p := DefaultParams()
	p.Layout = "zigzag"
	if _, err := Add(context.Background(), mr(), p, newMemSink(), nil); !errors.Is(err, ErrInvalidLayout) {
		t.Errorf("bad layout: %v", err)
	}
	// Zero Params work like DefaultParams.
	root, err := Add(context.Background(), mr(), Params{}, newMemSink(), nil)
	if err != nil {
		t.Fatal(err)
	}
	root2, _ := Add(context.Background(), mr(), DefaultParams(), newMemSink(), nil)
	if !root.Equals(root2) {
		t.Errorf("zero Params: %s, defaults: %s", root, root2)
	}
	// A non-default hash on programmatic Params implies CIDv1.
	p = DefaultParams()
	p.HashFunc = "sha2-512"
	root, err = Add(context.Background(), mr(), p, newMemSink(), nil)
	if err != nil || root.Version() != 1 || root.Prefix().Codec != cid.Raw {
		t.Errorf("sha2-512: %s %v", root, err)
	}
}
