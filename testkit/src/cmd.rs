//! Running programs from tests: one runner that names the failing command line and its stderr, a quiet runner
//! for teardown, a child that is ended by its own pid when dropped, and a child driven line by line.

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs a command to completion; a failure names the command line and carries its stderr.
pub fn run(program: &str, args: &[&str]) -> io::Result<Output> {
    let output = Command::new(program).args(args).stdin(Stdio::null()).output()?;
    if output.status.success() {
        return Ok(output);
    }
    Err(io::Error::other(format!(
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

/// Best effort, for teardown: never fails, never panics (cleanup must not panic during an unwinding test).
pub fn run_quietly(program: &str, args: &[&str]) {
    let _ = Command::new(program).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// Unwraps a setup step: a test whose setup failed means nothing, so it fails with the step's message.
pub fn ok<T>(result: io::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

/// A child ended (SIGKILL) and reaped on drop, unless it already exited: a failing assertion never leaves a
/// server behind.
pub struct Guarded {
    pub child: Child,
}

impl Guarded {
    pub fn spawn(command: &mut Command) -> io::Result<Guarded> {
        Ok(Guarded { child: command.spawn()? })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits up to `limit` for the exit; returns the status and how long it took.
    pub fn terminate(&mut self, limit: Duration) -> io::Result<(ExitStatus, Duration)> {
        let started = Instant::now();
        run("kill", &["-TERM", &self.pid().to_string()])?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok((status, started.elapsed()));
            }
            if started.elapsed() > limit {
                return Err(io::Error::other(format!("pid {} still running {limit:?} after SIGTERM", self.pid())));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A child driven line by line over stdin/stdout; killed and reaped on drop.
pub struct LineChild {
    guard: Guarded,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl LineChild {
    /// Spawns `command` with piped stdin and stdout.
    pub fn spawn(command: &mut Command) -> io::Result<LineChild> {
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| io::Error::other("child stdin"))?;
        let stdout = BufReader::new(child.stdout.take().ok_or_else(|| io::Error::other("child stdout"))?);
        Ok(LineChild { guard: Guarded { child }, stdin, stdout })
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Sends one command line and returns the reply line.
    pub fn ask(&mut self, line: &str) -> io::Result<String> {
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()?;
        self.read_line()
    }

    pub fn read_line(&mut self) -> io::Result<String> {
        let mut reply = String::new();
        if self.stdout.read_line(&mut reply)? == 0 {
            return Err(io::Error::other(format!("child {} closed its stdout", self.pid())));
        }
        Ok(reply.trim().to_string())
    }
}
