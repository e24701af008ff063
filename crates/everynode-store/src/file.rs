//! The file under redb: redb's own `FileBackend` (its locking, reads and writes), except
//! that the space redb writes into has been written with zeros first.
//!
//! redb grows its file with `ftruncate`, which leaves a hole. Every commit that then
//! writes into the hole makes the file system allocate blocks at writeback, so that
//! commit's `fdatasync` also writes the allocation metadata (extent and bitmap blocks,
//! the inode), each a synchronous device round trip. Here the first write past the
//! zero-filled prefix of the file first fills the next few MiB with zeros; the commit that
//! carries it pays for the allocation once, and the commits after it only overwrite
//! blocks in place. On this project's virtual disks a commit then takes a quarter to a
//! third less time and CPU (`everynode bench commit`; `BENCHMARKS.md`, session 7).
//!
//! Only space that nothing has written since the file was opened is filled: at open the
//! whole existing file counts as filled (a file of an earlier version keeps its holes).

use std::fs::File;
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use redb::backends::FileBackend;
use redb::{BackendError, DatabaseError, StorageBackend};

/// How far ahead of a write past the filled prefix the zeros reach.
const FILL_AHEAD: u64 = 4 << 20;
/// Zeros are written in pieces of this size.
const PIECE: usize = 1 << 20;

#[derive(Debug)]
pub(crate) struct ZeroFilledFile {
    inner: FileBackend,
    /// The same file, for the zero writes (`FileBackend` does not lend its handle).
    file: File,
    /// Every block below this offset has been written; nothing above it has been
    /// written through this backend. `None` once a fill failed: from then on the file
    /// grows as redb's own backend grows it.
    filled: Mutex<Option<u64>>,
}

impl ZeroFilledFile {
    pub(crate) fn new(file: File) -> Result<ZeroFilledFile, DatabaseError> {
        let zeros = file.try_clone()?;
        ZeroFilledFile::with_zeros_through(file, zeros)
    }

    /// The backend over `file`, writing its zeros through `zeros` (the same file; a
    /// separate handle so that tests can make the fills fail).
    fn with_zeros_through(file: File, zeros: File) -> Result<ZeroFilledFile, DatabaseError> {
        let filled = file.metadata()?.len();
        Ok(ZeroFilledFile {
            inner: FileBackend::new(file)?,
            file: zeros,
            filled: Mutex::new(Some(filled)),
        })
    }

    /// Writes zeros over `[from, to)`.
    fn zero(&self, mut from: u64, to: u64) -> std::io::Result<()> {
        let zeros = vec![0u8; PIECE];
        while from < to {
            let n = usize::try_from(to - from).map_or(PIECE, |left| left.min(PIECE));
            self.file.write_all_at(&zeros[..n], from)?;
            from += n as u64;
        }
        Ok(())
    }

    fn filled(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        // The value is a plain offset, valid even if a holder panicked.
        self.filled.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StorageBackend for ZeroFilledFile {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let mut filled = self.filled();
        self.inner.set_len(len)?;
        if let Some(f) = filled.as_mut() {
            *f = (*f).min(len);
        }
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let end = offset + data.len() as u64;
        {
            let mut guard = self.filled();
            if let Some(filled) = *guard
                && end > filled
            {
                // Up to the end of this write at least, a little further if the file
                // reaches that far, never past its end.
                let to = (filled + FILL_AHEAD).min(self.inner.len()?).max(end);
                *guard = match self.zero(filled, to) {
                    Ok(()) => Some(to),
                    Err(e) => {
                        // A full disk, say: the zeros are an optimisation, the write
                        // below decides. Filling stops for good, so that no later fill
                        // can land on data written past the filled prefix.
                        tracing::warn!(error = %e, "store file: zero-filling fresh space failed; growing it sparsely from now on");
                        None
                    }
                };
            }
        }
        self.inner.write(offset, data)
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    const MIB: u64 = 1 << 20;

    fn allocated(file: &File) -> u64 {
        file.metadata().map(|m| m.blocks() * 512).unwrap_or(0)
    }

    /// An empty file in a fresh directory (kept alive by the returned guard).
    fn empty_file() -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .expect("open");
        (dir, file)
    }

    fn read(b: &ZeroFilledFile, offset: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0xaa; len];
        b.read(offset, &mut out).expect("read");
        out
    }

    #[test]
    fn writes_land_on_allocated_zeros_and_keep_earlier_data() {
        let (_dir, file) = empty_file();
        let b = ZeroFilledFile::new(file.try_clone().expect("clone")).expect("backend");
        b.set_len(16 * MIB).expect("grow");
        // A sparse growth, as redb's own backend does it.
        assert!(allocated(&file) < MIB, "growing alone allocates nothing");
        b.write(MIB, b"first").expect("write");
        // Everything up to FILL_AHEAD is now real blocks (this is the point).
        assert!(allocated(&file) >= FILL_AHEAD, "{}", allocated(&file));
        // A write far past the filled prefix fills the gap and keeps the earlier data.
        b.write(10 * MIB, b"second").expect("write");
        assert!(allocated(&file) >= 10 * MIB, "{}", allocated(&file));
        assert_eq!(read(&b, MIB, 5), b"first");
        assert_eq!(read(&b, 10 * MIB, 6), b"second");
        assert_eq!(read(&b, 5 * MIB, 4), vec![0; 4]);
        // Filling never extends the file.
        assert_eq!(b.len().expect("len"), 16 * MIB);
        b.write(16 * MIB - 3, b"end").expect("write");
        assert_eq!(b.len().expect("len"), 16 * MIB);
        // Shrinking and growing again: the regrown part is filled again before use, and
        // data below the cut stays.
        b.set_len(2 * MIB).expect("shrink");
        b.set_len(8 * MIB).expect("grow");
        b.write(6 * MIB, b"third").expect("write");
        assert_eq!(read(&b, MIB, 5), b"first");
        assert_eq!(read(&b, 6 * MIB, 5), b"third");
        assert_eq!(read(&b, 3 * MIB, 3), vec![0; 3]);
    }

    #[test]
    fn a_failing_fill_leaves_the_writes_to_redb_and_stops_filling() {
        let (dir, file) = empty_file();
        // The zeros go through a read-only handle: every fill fails.
        let read_only = File::open(dir.path().join("f")).expect("open");
        let b = ZeroFilledFile::with_zeros_through(file.try_clone().expect("clone"), read_only)
            .expect("backend");
        b.set_len(16 * MIB).expect("grow");
        b.write(MIB, b"first").expect("the write itself succeeds");
        b.write(10 * MIB, b"second").expect("write");
        assert_eq!(read(&b, MIB, 5), b"first");
        assert_eq!(read(&b, 10 * MIB, 6), b"second");
        assert!(allocated(&file) < MIB, "nothing was filled");
        assert!(b.filled().is_none());
    }

    #[test]
    fn an_existing_file_is_never_overwritten_with_zeros() {
        let (_dir, file) = empty_file();
        // A file with a hole below its data, as an earlier version would leave it.
        file.set_len(8 * MIB).expect("grow");
        file.write_all_at(b"old", 6 * MIB).expect("write");
        let b = ZeroFilledFile::new(file.try_clone().expect("clone")).expect("backend");
        b.write(MIB, b"new").expect("write");
        b.set_len(12 * MIB).expect("grow");
        b.write(9 * MIB, b"newer").expect("write");
        assert_eq!(read(&b, 6 * MIB, 3), b"old");
        assert_eq!(read(&b, MIB, 3), b"new");
        assert_eq!(read(&b, 9 * MIB, 5), b"newer");
        assert!(
            allocated(&file) >= 4 * MIB,
            "the growth past the old end was filled"
        );
    }
}
