//! The plain socket under a connection that hyper upgraded (a WebSocket, say).
//!
//! hyper hands an upgraded connection over as `Upgraded`: its I/O in a box of its own, behind
//! dynamic dispatch, with any bytes read past the request kept in front. A WebSocket that sits
//! idle for hours pays for that box, so a plain connection can be taken back as the
//! `TcpStream` it started as. TLS connections stay `Upgraded`.

use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use quire_zerocopy::ZeroCopyStream;
use tokio::net::TcpStream;

use crate::stall::StallGuard;

/// The I/O the engine serves plain connections over.
pub(crate) type PlainIo = TokioIo<StallGuard<ZeroCopyStream>>;

/// The TCP socket of an upgraded plain connection, with the bytes hyper had already read
/// from it (usually none: a WebSocket client waits for the 101 before it sends). The socket
/// leaves the write-stall guard behind: whoever takes it times its own writes. An upgraded
/// TLS connection comes back unchanged as the error.
pub fn into_plain_socket(upgraded: Upgraded) -> Result<(TcpStream, Bytes), Upgraded> {
    let parts = upgraded.downcast::<PlainIo>()?;
    let socket = parts.io.into_inner().into_inner().into_inner();
    Ok((socket, parts.read_buf))
}
