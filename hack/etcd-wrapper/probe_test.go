package main

import (
	"bytes"
	"testing"
)

func TestRangeRequestFrame(t *testing.T) {
	// etcdserverpb.RangeRequest{Key: []byte("foo"), Limit: 1} as protoc encodes it, in a gRPC frame.
	want := []byte{0, 0, 0, 0, 7, 0x0a, 3, 'f', 'o', 'o', 0x18, 1}
	if got := grpcFrame(rangeRequest("foo")); !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
}
