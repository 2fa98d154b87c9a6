//! Running the `acm` binary as a user would.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::process::Command;

/// Runs `acm` with `args`; returns its exit code (-1 when killed), standard output and
/// standard error.
pub fn acm_code<S: AsRef<OsStr>>(args: &[S]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_acm"))
        .args(args)
        .output()
        .expect("run acm");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `acm` with `args`; returns whether it succeeded, standard output and standard error.
pub fn acm<S: AsRef<OsStr>>(args: &[S]) -> (bool, String, String) {
    let (code, out, err) = acm_code(args);
    (code == 0, out, err)
}
