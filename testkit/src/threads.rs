//! What a thread of the test process has cost: CPU ticks and wake-ups, read from `/proc/self/task/<tid>/`.

/// What one thread of this process has cost so far: CPU in clock ticks (utime + stime, 1/100 s)
/// and voluntary context switches (each one a sleep the thread woke from).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadUsage {
    pub cpu_ticks: u64,
    pub wakeups: u64,
}

impl ThreadUsage {
    /// The calling thread's id, for [`ThreadUsage::of`] from another thread.
    pub fn current_tid() -> i32 {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::gettid() }
    }

    /// The usage of thread `tid` of this process, read from `/proc/self/task/<tid>/`.
    pub fn of(tid: i32) -> ThreadUsage {
        let task = format!("/proc/self/task/{tid}");
        let stat = std::fs::read_to_string(format!("{task}/stat")).expect("read the thread's stat");
        // Fields after the parenthesised command name: state is the 3rd field, utime the 14th, stime the 15th.
        let after_name = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let cpu_ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        let status = std::fs::read_to_string(format!("{task}/status")).expect("read the thread's status");
        let wakeups = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("voluntary_ctxt_switches in status");
        ThreadUsage { cpu_ticks, wakeups }
    }

    pub fn since(self, earlier: ThreadUsage) -> ThreadUsage {
        ThreadUsage { cpu_ticks: self.cpu_ticks - earlier.cpu_ticks, wakeups: self.wakeups - earlier.wakeups }
    }
}
