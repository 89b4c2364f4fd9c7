//! Where the listening socket comes from: inherited from the process that started quire
//! (systemd socket activation, or a supervisor handing the same socket from an old process
//! to its replacement: `LISTEN_FDS`, with `LISTEN_PID` checked when set), or bound here,
//! optionally with `SO_REUSEPORT` so a new process can bind beside an old one.
//!
//! With an inherited socket, restarts lose nothing: both processes accept from one queue,
//! so a connection waits until one of them takes it, and the old one merely stops accepting.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// How to get the listening socket.
#[derive(Debug, Clone, Copy)]
pub struct ListenOptions {
    pub address: SocketAddr,
    /// Pending connections the kernel queues before `accept` (capped by `somaxconn`).
    pub backlog: u32,
    /// Set `SO_REUSEPORT`, so another process may listen on the same address at once.
    pub reuse_port: bool,
}

/// The inherited listening socket, if the environment passes one (`LISTEN_FDS`).
pub fn inherited() -> io::Result<Option<TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    let Some(listener) = fds.take_tcp_listener(0)? else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "LISTEN_FDS is set but descriptor 0 is not a TCP listening socket",
        ));
    };
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener).map(Some)
}

/// Binds a new listening socket.
pub fn bind(options: ListenOptions) -> io::Result<TcpListener> {
    let socket = match options.address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    if options.reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(options.address)?;
    socket.listen(options.backlog)
}

/// The inherited socket if there is one, else a new one bound as `options` say.
pub fn listen(options: ListenOptions) -> io::Result<(TcpListener, bool)> {
    match inherited()? {
        Some(listener) => Ok((listener, true)),
        None => bind(options).map(|listener| (listener, false)),
    }
}
