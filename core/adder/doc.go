// Package adder imports the body of an IPFS Cluster "POST /add" request as
// UnixFS and hands the resulting blocks to a [BlockSink].
//
// The body is a multipart stream in the go-ipfs-files format used by kubo and
// by the IPFS Cluster clients: every part is named "file", carries the
// URL-escaped relative path of the entry as its filename and a Content-Type
// telling directories ("application/x-directory"), symbolic links
// ("application/symlink") and regular files (anything else) apart. Children of
// a directory follow it with the directory path as prefix.
//
// Files are chunked and laid out with boxo's importers (balanced or trickle),
// and directories are built with boxo's unixfs io.Directory, which switches to
// a HAMT-sharded directory automatically past its size threshold. For the same
// bytes and parameters the resulting CIDs are the ones "ipfs add" (kubo)
// produces with its default settings.
//
// Memory use does not grow with the size of the files: file contents are
// streamed through the chunker, and blocks are handed to the sink in bounded
// batches as they are produced (see [DefaultBatchBlocks] and
// [DefaultBatchBytes]). What is kept until an entry is finished is one open
// directory per nesting level (its links) and a small record (path, CID,
// size) per directory, needed to report directories at the end.
//
// [Add] reports what it imports through a callback, in the order of the IPFS
// Cluster API: every file or symlink as soon as it is imported, then the
// directories bottom-up, and, when wrapping, the wrapping directory last with
// an empty name. With Params.Progress, progress events (no CID, only the
// number of bytes read so far) are interleaved while files are read.
//
// With format=car the body carries one CAR file (CARv1 or CARv2, read with
// go-car) instead: its blocks are checked against their CIDs and handed to
// the sink as they are read, the file must name exactly one root and hold
// its block, and one event reports the root once the sink has every block.
package adder
