//! Zero-copy sends of mapped files.
//!
//! A media download hands hyper its body as `Bytes` that point into mapped windows of the
//! blob file ([`FileWindow`]). Written the ordinary way, every byte is copied from those
//! pages into the socket's buffers by `write(2)`; nginx instead asks the kernel to send the
//! file itself with `sendfile(2)`, which copies nothing in user space.
//!
//! hyper only ever shows the socket a list of byte slices, so the two halves meet by
//! address: a [`FileWindow`] registers the address range it maps together with the file
//! and offset it maps, and [`ZeroCopyStream`] (the plain TCP socket under hyper) looks each
//! slice it is asked to write up in that registry. A slice inside a registered window is
//! sent from the file with `sendfile(2)`; any other slice is written as before. TLS and any
//! stream that is not a [`ZeroCopyStream`] keep the ordinary path, and are served the same
//! bytes, because the mapping and the file hold the same bytes.
//!
//! The registry is exact because a window unregisters itself before its mapping is undone,
//! and a slice is looked up while hyper still holds the `Bytes` it points into.

mod stream;
mod window;

pub use stream::ZeroCopyStream;
pub use window::FileWindow;
