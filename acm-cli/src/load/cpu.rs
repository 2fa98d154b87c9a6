//! CPU time of this process by thread name, from `/proc/self/task/*/stat` (Linux; elsewhere
//! nothing), so a run can say what an exchange costs in CPU and who spends it: the load's
//! own clients (threads `acm-load-client`), the servers' tokio workers, the SQLite writers
//! and readers.

use std::collections::BTreeMap;
use std::time::Duration;

/// `/proc` counts CPU time in `USER_HZ` ticks, fixed at 100 a second for user space.
const MS_PER_TICK: u64 = 10;

/// CPU time so far, user + system, by thread name (threads that ended are not counted).
#[derive(Debug, Clone, Default)]
pub struct Sample {
    by_name: BTreeMap<String, Duration>,
}

/// Reads every thread of this process; `None` where `/proc` is not there.
pub fn sample() -> Option<Sample> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut by_name = BTreeMap::new();
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        if let Some((name, time)) = parse_stat(&stat) {
            let slot = by_name.entry(name).or_insert(Duration::ZERO);
            *slot = slot.saturating_add(time);
        }
    }
    Some(Sample { by_name })
}

/// The thread's name and its user + system time, from one `stat` line.
pub fn parse_stat(stat: &str) -> Option<(String, Duration)> {
    // `pid (comm) state ppid …`: the name may hold spaces and parentheses, so it ends at
    // the last `)`.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open.checked_add(1)?..close)?.to_owned();
    let fields: Vec<&str> = stat
        .get(close.checked_add(1)?..)?
        .split_whitespace()
        .collect();
    // Fields 14 and 15 of proc(5) (utime, stime); the list starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ms = utime.saturating_add(stime).saturating_mul(MS_PER_TICK);
    Some((name, Duration::from_millis(ms)))
}

impl Sample {
    /// What each thread name spent between `before` and this sample.
    pub fn since(&self, before: &Self) -> Vec<(String, Duration)> {
        let mut spent: Vec<(String, Duration)> = self
            .by_name
            .iter()
            .map(|(name, t)| {
                let was = before.by_name.get(name).copied().unwrap_or(Duration::ZERO);
                (name.clone(), t.saturating_sub(was))
            })
            .filter(|(_, t)| !t.is_zero())
            .collect();
        spent.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
        spent
    }
}
