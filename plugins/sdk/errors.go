package sdk

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pincluster/pincluster/core"
)

// How errors cross the plugin boundary:
//
//	core.ErrPinNotFound (or an error wrapping it)  <-> codes.NotFound
//	context.Canceled                              <-> codes.Canceled
//	context.DeadlineExceeded                      <-> codes.DeadlineExceeded
//	any other error                                -> codes.Unknown
//
// The status message is always err.Error(). On the receiving side the error
// is rebuilt so that its Error() is exactly that message and errors.Is
// still finds core.ErrPinNotFound and the context errors. A status with
// codes.Unavailable means the other process is gone; see IsUnavailable.

// grpcClientConnClosing is the message of grpc.ErrClientConnClosing, which
// grpc reports with codes.Canceled after the connection was closed locally.
const grpcClientConnClosing = "grpc: the client connection is closing"

// remoteError is an error received from the other side of the boundary.
type remoteError struct {
	code codes.Code
	msg  string
}

func (e *remoteError) Error() string { return e.msg }

// Is matches the sentinel errors the codes stand for.
func (e *remoteError) Is(target error) bool {
	switch e.code {
	case codes.NotFound:
		return target == core.ErrPinNotFound
	case codes.Canceled:
		return target == context.Canceled
	case codes.DeadlineExceeded:
		return target == context.DeadlineExceeded
	}
	return false
}

// GRPCStatus lets the grpc status package read the code back.
func (e *remoteError) GRPCStatus() *status.Status { return status.New(e.code, e.msg) }

// toStatus turns an error of an implementation into the gRPC status error
// sent to the other side.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, core.ErrPinNotFound):
		code = codes.NotFound
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, err.Error())
}

// invalidArgument reports a request that could not be decoded.
func invalidArgument(err error) error {
	return status.Error(codes.InvalidArgument, err.Error())
}

// fromStatus turns an error returned by a gRPC call into the error handed
// to the caller of an adapter.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	code, msg := st.Code(), st.Message()
	switch code {
	case codes.OK:
		return nil
	case codes.NotFound:
		if msg == core.ErrPinNotFound.Error() {
			return core.ErrPinNotFound
		}
	case codes.Canceled:
		if msg == grpcClientConnClosing {
			code = codes.Unavailable
		} else if msg == context.Canceled.Error() {
			return context.Canceled
		}
	case codes.DeadlineExceeded:
		if msg == context.DeadlineExceeded.Error() {
			return context.DeadlineExceeded
		}
	}
	return &remoteError{code: code, msg: msg}
}

// IsUnavailable reports whether err says the other side of the plugin
// boundary cannot be reached: the plugin process exited or crashed (or, seen
// from a plugin, the core went away), or the connection was closed. The
// core uses it to tell a dead plugin from a failed call.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var re *remoteError
	if errors.As(err, &re) {
		return re.code == codes.Unavailable
	}
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	return st.Code() == codes.Unavailable ||
		(st.Code() == codes.Canceled && st.Message() == grpcClientConnClosing)
}
