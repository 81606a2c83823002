package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/pincluster/pincluster/api/client"
	"github.com/pincluster/pincluster/core"
)

// Adding a directory and printing the outputs as the peer streams them.
func ExampleClient_Add() {
	c, err := client.New(client.Config{Host: "/ip4/127.0.0.1/tcp/9094"})
	if err != nil {
		log.Fatal(err)
	}
	p := client.DefaultAddParams()
	p.Recursive = true
	for out, err := range c.Add(context.Background(), []string{"photos"}, p) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("added", out.Cid, out.Name)
	}
}

// Pinning a CID and waiting until it is pinned, as
// `pincluster-ctl pin add --wait` does.
func ExampleClient_WaitFor() {
	c, err := client.New(client.Config{Host: "http://127.0.0.1:9094", Timeout: 30 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	pin, err := c.PinPath(ctx, "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN", core.PinOptions{Name: "hello"})
	if err != nil {
		log.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	gpi, err := c.WaitFor(wctx, client.WaitParams{
		Cid:    pin.Cid,
		Target: core.TrackerStatusPinned,
		Limit:  client.WaitLimit(pin, core.TrackerStatusPinned, 0),
	})
	if err != nil {
		log.Fatal(err)
	}
	for peer, info := range gpi.PeerMap {
		fmt.Println(peer, info.Status)
	}
}

// Listing the pins in error on every peer; the stream is read item by item.
func ExampleClient_StatusAll() {
	c, err := client.New(client.Config{})
	if err != nil {
		log.Fatal(err)
	}
	for gpi, err := range c.StatusAll(context.Background(), core.TrackerStatusError, false) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(gpi.Cid)
	}
}
