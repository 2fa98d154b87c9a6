//! `acm demo`: the 14 steps of interconnection group identity provision between MC systems
//! A and B — over HTTPS between two ACM servers on loopback (the default), or between two
//! in-process servers (`--in-process`).

pub mod https;
pub mod in_process;
