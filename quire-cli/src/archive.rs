//! The files `quire backup` and `quire export` write and `quire restore` and `quire import`
//! read: a tar stream, gzip-compressed when the file name ends in `.gz` (recognized by its
//! magic bytes when read).
//!
//! One blocking thread of its own writes (or reads) the file; the async side hands it entries
//! (or takes them from it) through bounded channels. No async worker waits on the disk, and
//! memory holds a few chunks whatever the archive's size. A written archive appears under its
//! name only once complete and synced (it is written as `NAME.partial`, then renamed); a
//! failed or abandoned one leaves nothing.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use futures_util::StreamExt as _;
use quire_media::ByteStream;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

/// Entries at most this large are handed over whole; larger ones (and media) as streams.
const WHOLE_ENTRY_LIMIT: u64 = 16 * 1024 * 1024;
/// Bytes per chunk of a streamed entry.
const CHUNK: usize = 256 * 1024;
/// Chunks of a streamed entry that may wait between the two sides.
const CHUNKS_IN_FLIGHT: usize = 8;

/// What the writer thread is asked to append.
enum Piece {
    Whole {
        path: String,
        bytes: Vec<u8>,
    },
    Streamed {
        path: String,
        size: u64,
        chunks: mpsc::Receiver<io::Result<Bytes>>,
    },
}

/// An archive being written (see the module documentation).
pub struct ArchiveWriter {
    pieces: Option<mpsc::Sender<Piece>>,
    thread: Option<tokio::task::JoinHandle<io::Result<u64>>>,
    partial: PathBuf,
    path: PathBuf,
}

impl ArchiveWriter {
    /// Starts writing the archive `path` (as `path.partial` until [`Self::finish`]).
    pub async fn create(path: &Path) -> anyhow::Result<Self> {
        let partial = partial_name(path);
        let gzip = path.extension().is_some_and(|e| e == "gz");
        let file = {
            let partial = partial.clone();
            tokio::task::spawn_blocking(move || File::create(&partial)).await?
        }
        .with_context(|| format!("cannot create {}", partial.display()))?;
        let (pieces, received) = mpsc::channel(2);
        let thread = tokio::task::spawn_blocking(move || write_all(file, gzip, received));
        Ok(Self {
            pieces: Some(pieces),
            thread: Some(thread),
            partial,
            path: path.to_owned(),
        })
    }

    /// Appends a small entry.
    pub async fn whole(&mut self, path: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.send(Piece::Whole {
            path: path.to_owned(),
            bytes,
        })
        .await
    }

    /// Appends an entry of exactly `size` bytes read from `body`, calling `progress` with each
    /// chunk's length; returns the SHA-256 of what was written (lowercase hex).
    pub async fn streamed(
        &mut self,
        path: &str,
        size: u64,
        mut body: ByteStream,
        progress: &dyn Fn(u64),
    ) -> anyhow::Result<String> {
        let (chunks, received) = mpsc::channel(CHUNKS_IN_FLIGHT);
        self.send(Piece::Streamed {
            path: path.to_owned(),
            size,
            chunks: received,
        })
        .await?;
        let mut hash = Sha256::new();
        let mut sent = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    let message = error.to_string();
                    let _ = chunks.send(Err(error)).await;
                    bail!("reading {path}: {message}");
                }
            };
            sent += chunk.len() as u64;
            hash.update(&chunk);
            progress(chunk.len() as u64);
            if chunks.send(Ok(chunk)).await.is_err() {
                break; // the writer failed; finish() reports why
            }
        }
        drop(chunks);
        if sent != size {
            bail!("{path} held {sent} bytes where {size} were expected");
        }
        Ok(hex(&hash.finalize()))
    }

    async fn send(&mut self, piece: Piece) -> anyhow::Result<()> {
        let sent = match &self.pieces {
            Some(pieces) => pieces.send(piece).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The writer thread has stopped: its error says why.
        self.pieces = None;
        match self.thread.take() {
            Some(thread) => match thread.await? {
                Ok(_) => bail!("the archive writer stopped early"),
                Err(error) => {
                    Err(error).with_context(|| format!("cannot write {}", self.partial.display()))
                }
            },
            None => bail!("the archive writer stopped early"),
        }
    }

    /// Completes the archive, syncs it and gives it its name; returns its size in bytes.
    pub async fn finish(mut self) -> anyhow::Result<u64> {
        self.pieces = None;
        let thread = self
            .thread
            .take()
            .context("the archive writer stopped early")?;
        let bytes = thread
            .await?
            .with_context(|| format!("cannot write {}", self.partial.display()))?;
        let (partial, path) = (self.partial.clone(), self.path.clone());
        tokio::task::spawn_blocking(move || {
            std::fs::rename(&partial, &path)?;
            sync_parent(&path)
        })
        .await?
        .with_context(|| format!("cannot name the archive {}", self.path.display()))?;
        Ok(bytes)
    }
}

impl Drop for ArchiveWriter {
    fn drop(&mut self) {
        // Failed or abandoned before finish() renamed it: the partial file goes (a thread
        // still writing it ends once it sees its channel closed).
        let _ = std::fs::remove_file(&self.partial);
    }
}

fn partial_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    name.into()
}

fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

/// The writer thread: appends each piece, then completes the tar and syncs the file.
fn write_all(file: File, gzip: bool, mut pieces: mpsc::Receiver<Piece>) -> io::Result<u64> {
    let out = BufWriter::with_capacity(1024 * 1024, file);
    let out = if gzip {
        Output::Gzip(GzEncoder::new(out, Compression::fast()))
    } else {
        Output::Plain(out)
    };
    let mut tar = tar::Builder::new(Counting {
        inner: out,
        bytes: 0,
    });
    while let Some(piece) = pieces.blocking_recv() {
        match piece {
            Piece::Whole { path, bytes } => {
                tar.append_data(&mut header(bytes.len() as u64), &path, bytes.as_slice())?;
            }
            Piece::Streamed { path, size, chunks } => {
                let mut reader = ChunkReader {
                    chunks,
                    current: Bytes::new(),
                    left: size,
                };
                tar.append_data(&mut header(size), &path, &mut reader)?;
                if reader.left != 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{path} ended early"),
                    ));
                }
            }
        }
    }
    let counting = tar.into_inner()?;
    let file = counting.inner.finish()?;
    file.sync_all()?;
    Ok(counting.bytes)
}

/// The archive file, compressed or not.
enum Output {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

impl Output {
    /// Writes out what is buffered (and gzip's trailer) and gives the file back.
    fn finish(self) -> io::Result<File> {
        let buffered = match self {
            Output::Plain(out) => out,
            Output::Gzip(gzip) => gzip.finish()?,
        };
        buffered.into_inner().map_err(|e| e.into_error())
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Plain(out) => out.write(buf),
            Output::Gzip(out) => out.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Plain(out) => out.flush(),
            Output::Gzip(out) => out.flush(),
        }
    }
}

fn header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    header.set_entry_type(tar::EntryType::Regular);
    header
}

/// Counts what is written through it (the archive's uncompressed size).
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a streamed entry's chunks on the writer thread, refusing more than announced.
struct ChunkReader {
    chunks: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    left: u64,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(error)) => return Err(error),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        if n as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "an entry grew past its announced size",
            ));
        }
        buf[..n].copy_from_slice(&self.current.split_to(n));
        self.left -= n as u64;
        Ok(n)
    }
}

/// One entry of an archive being read.
pub enum Entry {
    /// A small entry, whole.
    Whole { path: String, bytes: Vec<u8> },
    /// A large entry or a media blob: its chunks must be read to the end (or the receiver
    /// dropped) before the next entry arrives.
    Streamed {
        path: String,
        size: u64,
        chunks: mpsc::Receiver<io::Result<Bytes>>,
    },
}

impl Entry {
    pub fn path(&self) -> &str {
        match self {
            Entry::Whole { path, .. } | Entry::Streamed { path, .. } => path,
        }
    }
}

/// Turns a streamed entry's chunks into a body (for a blob store or a file).
pub fn chunk_stream(chunks: mpsc::Receiver<io::Result<Bytes>>) -> ByteStream {
    Box::pin(futures_util::stream::unfold(chunks, |mut chunks| async {
        chunks.recv().await.map(|chunk| (chunk, chunks))
    }))
}

/// Streams the file at `path` in chunks (tokio's file reads run on the blocking pool).
pub async fn file_stream(path: &Path) -> anyhow::Result<ByteStream> {
    use tokio::io::AsyncReadExt as _;
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Box::pin(futures_util::stream::unfold(
        Some(file),
        |file| async move {
            let mut file = file?;
            let mut chunk = vec![0u8; CHUNK];
            match file.read(&mut chunk).await {
                Ok(0) => None,
                Ok(n) => {
                    chunk.truncate(n);
                    Some((Ok(Bytes::from(chunk)), Some(file)))
                }
                Err(e) => Some((Err(e), None)),
            }
        },
    )))
}

/// Reads the archive at `path` on a thread of its own, handing its entries over in order.
/// The last item is an error if the archive is damaged.
pub async fn read(path: &Path) -> anyhow::Result<mpsc::Receiver<io::Result<Entry>>> {
    let file = {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || File::open(path)).await?
    }
    .with_context(|| format!("cannot open {}", path.display()))?;
    let (entries, received) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        if let Err(error) = read_all(file, &entries) {
            let _ = entries.blocking_send(Err(error));
        }
    });
    Ok(received)
}

fn read_all(file: File, entries: &mpsc::Sender<io::Result<Entry>>) -> io::Result<()> {
    let mut input = BufReader::with_capacity(1024 * 1024, file);
    let gzip = {
        use std::io::BufRead as _;
        input.fill_buf()?.starts_with(&[0x1f, 0x8b])
    };
    let input: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path()?.to_string_lossy().into_owned();
        let size = entry.size();
        if size <= WHOLE_ENTRY_LIMIT && !path.starts_with("media/") {
            let mut bytes = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut bytes)?;
            if entries
                .blocking_send(Ok(Entry::Whole { path, bytes }))
                .is_err()
            {
                return Ok(()); // the reader stopped listening
            }
            continue;
        }
        let (chunks, received) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let announced = Entry::Streamed {
            path,
            size,
            chunks: received,
        };
        if entries.blocking_send(Ok(announced)).is_err() {
            return Ok(());
        }
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let n = entry.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            chunk.truncate(n);
            if chunks.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                // Skipped by the reader: the tar reader moves past the rest itself.
                break;
            }
        }
    }
    Ok(())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_come_back_as_written_plain_and_gzipped() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.tar", "a.tar.gz"] {
            let path = dir.path().join(name);
            let mut writer = ArchiveWriter::create(&path).await.unwrap();
            writer.whole("one.json", b"{}".to_vec()).await.unwrap();
            let big = Bytes::from(vec![7u8; 3 * CHUNK + 5]);
            let body: ByteStream = Box::pin(futures_util::stream::iter([
                Ok(big.slice(..10)),
                Ok(big.slice(10..)),
            ]));
            let sha = writer
                .streamed("media/x", big.len() as u64, body, &|_| {})
                .await
                .unwrap();
            assert_eq!(sha, hex(&Sha256::digest(&big)));
            writer.finish().await.unwrap();
            assert!(!partial_name(&path).exists());

            let mut entries = read(&path).await.unwrap();
            match entries.recv().await.unwrap().unwrap() {
                Entry::Whole { path, bytes } => {
                    assert_eq!((path.as_str(), &bytes[..]), ("one.json", &b"{}"[..]))
                }
                Entry::Streamed { .. } => panic!("small entry streamed"),
            }
            match entries.recv().await.unwrap().unwrap() {
                Entry::Streamed {
                    path,
                    size,
                    mut chunks,
                } => {
                    assert_eq!((path.as_str(), size), ("media/x", big.len() as u64));
                    let mut got = Vec::new();
                    while let Some(chunk) = chunks.recv().await {
                        got.extend_from_slice(&chunk.unwrap());
                    }
                    assert_eq!(got, big);
                }
                Entry::Whole { .. } => panic!("media entry whole"),
            }
            assert!(entries.recv().await.is_none());
        }
    }

    #[tokio::test]
    async fn a_short_stream_fails_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tar");
        let mut writer = ArchiveWriter::create(&path).await.unwrap();
        let body: ByteStream =
            Box::pin(futures_util::stream::iter([Ok(Bytes::from_static(b"abc"))]));
        assert!(writer.streamed("media/y", 10, body, &|_| {}).await.is_err());
        assert!(writer.finish().await.is_err());
        assert!(!path.exists());
        assert!(!partial_name(&path).exists());
    }
}
