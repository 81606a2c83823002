package network

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pincluster/pincluster/core"
)

// WireMarshaler is implemented by payloads that travel in a binary form of
// their own instead of JSON (BlockPutRequest: raw block data would grow by
// a third as base64). The receiving type must implement WireUnmarshaler.
// Payloads travel as JSON otherwise, except core.PinInfo and
// []core.PinInfo, which have a binary form of their own (pininfo.go).
type WireMarshaler interface {
	// MarshalWire encodes the value; it must have a value receiver.
	MarshalWire() ([]byte, error)
}

// WireUnmarshaler decodes what the matching WireMarshaler produced.
type WireUnmarshaler interface {
	// UnmarshalWire decodes b; the value may keep references into b.
	UnmarshalWire(b []byte) error
}

// Payload codecs.
const (
	codecJSON byte = 'j'
	codecWire byte = 'w'
)

// Frame kinds. Every gorpc message of the protocol is one frame, a byte
// string sent as a list of chunks of at most 256 KiB (see split):
//
//	request:      version, svc (uvarint length + bytes), method (same), codec, payload
//	unary reply:  frameOK, codec, payload  |  frameError, message
//	stream reply: frameBatch, codec, count (uvarint), count × (uvarint length + payload)
//	              … then frameEnd  |  frameError, message
//
// A stream that stops without frameEnd or frameError was cut: the client
// reports it as an error rather than as a complete answer.
const (
	frameVersion byte = 1

	frameOK    byte = 0
	frameError byte = 1
	frameBatch byte = 2
	frameEnd   byte = 3
)

// encodePayload encodes v as JSON, or in its own binary form when it
// implements WireMarshaler.
func encodePayload(v any) (byte, []byte, error) {
	switch x := v.(type) {
	case WireMarshaler:
		b, err := x.MarshalWire()
		return codecWire, b, err
	case core.PinInfo:
		return codecPinInfo, appendPinInfo(nil, &x), nil
	case []core.PinInfo:
		return codecPinInfos, appendPinInfos(nil, x), nil
	}
	b, err := json.Marshal(v)
	return codecJSON, b, err
}

// decodePayload decodes data into out (a pointer); a nil out discards it.
func decodePayload(codec byte, data []byte, out any) error {
	if out == nil {
		return nil
	}
	switch codec {
	case codecJSON:
		return json.Unmarshal(data, out)
	case codecWire:
		u, ok := out.(WireUnmarshaler)
		if !ok {
			return fmt.Errorf("a binary payload cannot be decoded into %T", out)
		}
		return u.UnmarshalWire(data)
	case codecPinInfo:
		pi, ok := out.(*core.PinInfo)
		if !ok {
			return fmt.Errorf("a core.PinInfo cannot be decoded into %T", out)
		}
		return decodePinInfo(data, pi)
	case codecPinInfos:
		pis, ok := out.(*[]core.PinInfo)
		if !ok {
			return fmt.Errorf("a []core.PinInfo cannot be decoded into %T", out)
		}
		return decodePinInfos(data, pis)
	default:
		return fmt.Errorf("unknown payload codec %q", codec)
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// readBytes reads a uvarint length and as many bytes.
func readBytes(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errMalformed
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

var errMalformed = errors.New("malformed rpc frame")

type request struct {
	svc, method string
	codec       byte
	payload     []byte
}

func encodeRequest(svc, method string, in any) ([]byte, error) {
	codec, payload, err := encodePayload(in)
	if err != nil {
		return nil, fmt.Errorf("encoding the argument of %s.%s: %w", svc, method, err)
	}
	b := make([]byte, 0, 1+len(svc)+len(method)+4+len(payload))
	b = append(b, frameVersion)
	b = appendString(b, svc)
	b = appendString(b, method)
	b = append(b, codec)
	return append(b, payload...), nil
}

func decodeRequest(b []byte) (request, error) {
	if len(b) == 0 || b[0] != frameVersion {
		return request{}, errors.New("unsupported rpc frame version")
	}
	svc, rest, err := readBytes(b[1:])
	if err != nil {
		return request{}, err
	}
	method, rest, err := readBytes(rest)
	if err != nil || len(rest) == 0 {
		return request{}, errMalformed
	}
	return request{svc: string(svc), method: string(method), codec: rest[0], payload: rest[1:]}, nil
}

func encodeReply(out any, herr error) []byte {
	if herr != nil {
		return append([]byte{frameError}, herr.Error()...)
	}
	codec, payload, err := encodePayload(out)
	if err != nil {
		return append([]byte{frameError}, "encoding the reply: "+err.Error()...)
	}
	b := make([]byte, 0, 2+len(payload))
	return append(append(b, frameOK, codec), payload...)
}

// decodeReply decodes a unary reply into out; an error reply comes back as
// a *RemoteError.
func decodeReply(b []byte, out any) error {
	if len(b) == 0 {
		return errMalformed
	}
	switch b[0] {
	case frameError:
		return &RemoteError{Msg: string(b[1:])}
	case frameOK:
		if len(b) < 2 {
			return errMalformed
		}
		if err := decodePayload(b[1], b[2:], out); err != nil {
			return fmt.Errorf("decoding the reply: %w", err)
		}
		return nil
	default:
		return errMalformed
	}
}
