//! A VFS over the platform's that hands the WAL a commit's frames in a few writes instead
//! of two writes a page.
//!
//! SQLite appends each page of a commit to the WAL as two writes, its 24-byte frame header
//! and then the page, and syncs once at the end: a delivered event cost about seven
//! `pwrite` system calls, on the writer thread. This VFS gathers a WAL file's contiguous
//! writes in memory and passes them on in writes of up to 128 KiB, before the file is
//! synced, read, truncated, measured or closed. The bytes and their order on disk are
//! SQLite's own; only the number of system calls changes.
//!
//! Why the WAL may be held back until the sync: a commit is published to other connections
//! (the wal-index header) only after its frames are synced, when `synchronous=FULL`, which
//! every connection of the store runs with (see `conn::open`). Until the sync nothing may
//! read those frames but the writer itself, whose reads flush first. Under `NORMAL` a
//! commit is published unsynced, so this VFS must never carry a connection that runs it.
//!
//! The database file, its journal and everything else go to the platform's VFS untouched.
//! Only the Unix VFS is wrapped: its methods other than `xOpen` are shared by all of its
//! variants (`unix-dotfile`, `unix-none`, …), which differ only in name and `pAppData`, so
//! they may be called with this VFS's pointer.
//!
//! Safety: every `unsafe extern "C" fn` here is called by SQLite under its VFS contract:
//! `file` is the `szOsFile`-sized block it allocated and `open` filled (a [`WalFile`]
//! followed by the platform's file), used by one connection at a time, and the buffers
//! and lengths are SQLite's own.

#![allow(unsafe_code)]

use rusqlite::ffi;
use std::ffi::{c_int, c_void, CStr, CString};
use std::sync::OnceLock;

/// The name connections open with (`Connection::open_with_flags_and_vfs`).
pub(super) const NAME: &str = "verihook-wal";

/// The most a WAL file holds back: the largest write the Unix VFS takes at once (it masks
/// a write's length with `0x1ffff`), 31 frames of 4 KiB pages. A commit of the busiest
/// batches (~75 pages, 310 kB) goes out in three writes.
const LIMIT: usize = 0x1ffff;

/// Registers the VFS once per process. `None` where the platform's VFS is not Unix's: the
/// store then opens its files with the platform's VFS, one write a frame.
pub(super) fn name() -> Option<&'static str> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    REGISTERED.get_or_init(register).then_some(NAME)
}

fn register() -> bool {
    // SAFETY: `sqlite3_vfs_find(NULL)` returns the default VFS, which lives for the
    // process; the copy made of it and its name are leaked, so they too outlive every
    // connection.
    unsafe {
        let platform = ffi::sqlite3_vfs_find(std::ptr::null());
        if platform.is_null() || CStr::from_ptr((*platform).zName) != c"unix" {
            return false;
        }
        let (Ok(extra), Ok(name)) = (c_int::try_from(size_of::<WalFile>()), CString::new(NAME))
        else {
            return false;
        };
        let mut vfs = std::ptr::read(platform);
        vfs.iVersion = vfs.iVersion.min(2);
        vfs.szOsFile += extra;
        vfs.pNext = std::ptr::null_mut();
        vfs.zName = name.into_raw();
        vfs.pAppData = platform.cast();
        vfs.xOpen = Some(open);
        vfs.xSetSystemCall = None;
        vfs.xGetSystemCall = None;
        vfs.xNextSystemCall = None;
        ffi::sqlite3_vfs_register(Box::leak(Box::new(vfs)), 0) == ffi::SQLITE_OK
    }
}

/// A WAL file: the platform's file (allocated right after this struct, in the space
/// `szOsFile` adds) and the writes held back for it.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// The offset of `held[0]` in the file.
    start: i64,
    held: Vec<u8>,
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let platform: *mut ffi::sqlite3_vfs = (*vfs).pAppData.cast();
    let Some(platform_open) = (*platform).xOpen else {
        return ffi::SQLITE_CANTOPEN;
    };
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        return platform_open(platform, name, file, flags, out_flags);
    }
    let real = file.cast::<u8>().add(size_of::<WalFile>()).cast();
    let rc = platform_open(platform, name, real, flags, out_flags);
    let opened = !(*real).pMethods.is_null();
    std::ptr::write(
        file.cast::<WalFile>(),
        WalFile {
            // SQLite closes a file whose methods are set, even when its open failed.
            base: ffi::sqlite3_file {
                pMethods: if opened {
                    &WAL_METHODS
                } else {
                    std::ptr::null()
                },
            },
            real,
            start: 0,
            held: Vec::new(),
        },
    );
    rc
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

unsafe fn wal<'f>(file: *mut ffi::sqlite3_file) -> &'f mut WalFile {
    &mut *file.cast::<WalFile>()
}

unsafe fn methods<'f>(real: *mut ffi::sqlite3_file) -> &'f ffi::sqlite3_io_methods {
    &*(*real).pMethods
}

/// Passes what is held to the platform's file in one write (it is at most [`LIMIT`]).
unsafe fn flush(wal: &mut WalFile) -> c_int {
    if wal.held.is_empty() {
        return ffi::SQLITE_OK;
    }
    let rc = write_through(wal.real, &wal.held, wal.start);
    wal.held.clear();
    rc
}

unsafe fn write_through(real: *mut ffi::sqlite3_file, bytes: &[u8], offset: i64) -> c_int {
    let (Some(write), Ok(amount)) = (methods(real).xWrite, c_int::try_from(bytes.len())) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    #[cfg(test)]
    tests::WRITES.with(|w| w.set(w.get() + 1));
    write(real, bytes.as_ptr().cast(), amount, offset)
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    buffer: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let wal = wal(file);
    let Ok(length) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let bytes = std::slice::from_raw_parts(buffer.cast::<u8>(), length);
    let end = i64::try_from(wal.held.len()).map_or(i64::MAX, |held| wal.start + held);
    let follows = !wal.held.is_empty() && end == offset;
    if !follows || wal.held.len() + length > LIMIT {
        let rc = flush(wal);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        if length > LIMIT {
            return write_through(wal.real, bytes, offset);
        }
        wal.start = offset;
    }
    wal.held.extend_from_slice(bytes);
    ffi::SQLITE_OK
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let wal = wal(file);
    let flushed = flush(wal);
    let closed = methods(wal.real)
        .xClose
        .map_or(ffi::SQLITE_OK, |f| f(wal.real));
    std::ptr::drop_in_place(&mut wal.held);
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

/// The platform's file and its methods, once what was held for it is written: the way to
/// every method that reads or depends on the file's contents or length.
unsafe fn flushed<'f>(
    file: *mut ffi::sqlite3_file,
) -> Result<(*mut ffi::sqlite3_file, &'f ffi::sqlite3_io_methods), c_int> {
    let wal = wal(file);
    match flush(wal) {
        ffi::SQLITE_OK => Ok((wal.real, methods(wal.real))),
        rc => Err(rc),
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    buffer: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    flushed(file).map_or_else(
        |rc| rc,
        |(real, m)| {
            m.xRead
                .map_or(ffi::SQLITE_IOERR_READ, |f| f(real, buffer, amount, offset))
        },
    )
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    flushed(file).map_or_else(
        |rc| rc,
        |(real, m)| {
            m.xTruncate
                .map_or(ffi::SQLITE_IOERR_TRUNCATE, |f| f(real, size))
        },
    )
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    flushed(file).map_or_else(
        |rc| rc,
        |(real, m)| m.xSync.map_or(ffi::SQLITE_IOERR_FSYNC, |f| f(real, flags)),
    )
}

unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    flushed(file).map_or_else(
        |rc| rc,
        |(real, m)| {
            m.xFileSize
                .map_or(ffi::SQLITE_IOERR_FSTAT, |f| f(real, size))
        },
    )
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    argument: *mut c_void,
) -> c_int {
    flushed(file).map_or_else(
        |rc| rc,
        |(real, m)| {
            m.xFileControl
                .map_or(ffi::SQLITE_NOTFOUND, |f| f(real, op, argument))
        },
    )
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let real = wal(file).real;
    methods(real)
        .xLock
        .map_or(ffi::SQLITE_OK, |f| f(real, level))
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let real = wal(file).real;
    methods(real)
        .xUnlock
        .map_or(ffi::SQLITE_OK, |f| f(real, level))
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let real = wal(file).real;
    methods(real)
        .xCheckReservedLock
        .map_or(ffi::SQLITE_OK, |f| f(real, out))
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let real = wal(file).real;
    methods(real).xSectorSize.map_or(4096, |f| f(real))
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let real = wal(file).real;
    methods(real).xDeviceCharacteristics.map_or(0, |f| f(real))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use rusqlite::Connection;
    use std::cell::Cell;
    use std::path::{Path, PathBuf};

    thread_local! {
        /// Writes this thread has passed to the platform's WAL files.
        pub(super) static WRITES: Cell<u64> = const { Cell::new(0) };
    }

    fn writes() -> u64 {
        WRITES.with(Cell::get)
    }

    fn opened(path: &Path) -> Connection {
        let conn = super::super::conn::open(path).expect("opened");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("journal mode");
        assert_eq!(mode, "wal");
        // The VFS holds a commit's frames until the sync that FULL makes before publishing.
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("synchronous");
        assert_eq!(synchronous, 2, "FULL");
        conn
    }

    fn fill(conn: &Connection, from: i64, rows: i64) {
        let tx = conn.unchecked_transaction().expect("began");
        for i in from..from + rows {
            tx.execute(
                "INSERT INTO t (id, a, b) VALUES (?1, ?2, ?3)",
                (
                    i,
                    format!("{:0>40}", i * 7919 % 1_000_003),
                    vec![i as u8; 300],
                ),
            )
            .expect("inserted");
        }
        tx.commit().expect("committed");
    }

    /// Frames in the WAL, never checkpointed here: from its length on disk.
    fn frames(path: &Path) -> u64 {
        let wal = std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len());
        wal.saturating_sub(32) / (4096 + 24)
    }

    fn setup() -> (tempfile::TempDir, PathBuf, Connection) {
        assert_eq!(name(), Some(NAME), "the platform here is Unix");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let conn = opened(&path);
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT NOT NULL, b BLOB NOT NULL);
             CREATE INDEX t_a ON t (a);",
        )
        .expect("schema");
        let page: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .expect("page size");
        assert_eq!(page, 4096, "frames() counts 4 KiB pages");
        (dir, path, conn)
    }

    #[test]
    fn a_commit_reaches_the_wal_in_writes_of_31_frames_not_two_writes_a_frame() {
        let (_dir, path, conn) = setup();
        fill(&conn, 0, 10);
        let (writes_before, frames_before) = (writes(), frames(&path));
        fill(&conn, 10, 2_000);
        let frames_written = frames(&path) - frames_before;
        assert!(frames_written > 100, "only {frames_written} frames");
        let writes = writes() - writes_before;
        assert!(
            writes <= frames_written / 31 + 1,
            "{writes} writes, {frames_written} frames"
        );
    }

    #[test]
    fn every_commit_is_on_disk_for_other_connections_and_for_recovery_by_plain_sqlite() {
        let (dir, path, conn) = setup();
        let reader = opened(&path);
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                .expect("counted")
        };
        let mut rows = 0;
        // The last commit is larger than what a WAL file holds back: it goes in pieces.
        for batch in [1, 50, 3, 8_000] {
            fill(&conn, rows, batch);
            rows += batch;
            assert_eq!(count(&reader), rows);
        }
        // What a crash would leave on disk now: the database and its WAL, never
        // checkpointed, without the wal-index; plain SQLite rebuilds it from the WAL.
        let crashed = dir.path().join("crashed");
        std::fs::create_dir(&crashed).expect("made");
        for file in ["t.db", "t.db-wal"] {
            std::fs::copy(dir.path().join(file), crashed.join(file)).expect("copied");
        }
        let plain = Connection::open(crashed.join("t.db")).expect("opened without the VFS");
        assert_eq!(count(&plain), rows);
        let check: String = plain
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("checked");
        assert_eq!(check, "ok");
    }
}
