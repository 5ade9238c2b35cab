//! The one render thread. Every image the studio renders, and every latent
//! it makes from a seed, is computed here, one job at a time.
//!
//! Why one thread: each thread that calls into libtorch gets its own
//! OpenMP team (one worker per core) and its own malloc arena, and keeps
//! both until it exits. A thread per session or per request made a burst of
//! session requests grow to thousands of threads and gigabytes (issue 19).
//! One render already uses every core through libtorch's own threads, so a
//! second render thread would add memory, not speed.
//!
//! Jobs for a waiting request go first; sessions' background renders take
//! turns, one chunk each, so that no session starves the others.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, Weak};

/// A session's background rendering, as the render thread sees it: one
/// chunk per turn, so that sessions take turns.
pub trait Background: Send + Sync {
    /// Renders the next chunk of images.
    fn render_step(&self);
    /// Ends a turn; queues the next one if images are left.
    fn render_turn_over(&self);
}

/// A job for a request that waits for it.
type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    /// Requests' jobs, run before any background work.
    urgent: VecDeque<Job>,
    /// Sessions with images left to render, each once, in turn.
    sessions: VecDeque<Weak<dyn Background>>,
    /// Whether the thread is running a job now.
    running: bool,
}

impl Queue {
    fn is_idle(&self) -> bool {
        !self.running && self.urgent.is_empty() && self.sessions.is_empty()
    }
}

/// The render thread's queue.
pub struct Renderer {
    queue: Mutex<Queue>,
    ready: Condvar,
    idle: Condvar,
}

impl Renderer {
    /// Starts the render thread.
    pub fn start() -> Result<Arc<Renderer>, String> {
        let renderer = Arc::new(Renderer { queue: Mutex::default(), ready: Condvar::new(), idle: Condvar::new() });
        let worker = Arc::clone(&renderer);
        std::thread::Builder::new()
            .name("render".into())
            .spawn(move || worker.work())
            .map_err(|e| format!("cannot start the render thread: {e}"))?;
        Ok(renderer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Jobs run outside the lock, so a poisoned queue is still whole.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job` ahead of background work. It runs on the render thread;
    /// a panic in it is caught there, so the thread lives on.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) {
        self.lock().urgent.push_back(Box::new(job));
        self.ready.notify_one();
    }

    /// Queues a turn of `session`'s background rendering
    /// ([`Background::render_step`], then [`Background::render_turn_over`],
    /// which queues the next turn). The session makes sure that it is
    /// queued once at a time.
    pub fn wake(&self, session: Weak<dyn Background>) {
        self.lock().sessions.push_back(session);
        self.ready.notify_one();
    }

    /// Waits until nothing is queued or running. A process that exits while
    /// this thread is inside libtorch can crash in libtorch's teardown (its
    /// kernels' code is unmapped under the running render), so whoever
    /// ends the process with renders under way (the tests) waits first.
    #[cfg(test)]
    pub fn wait_idle(&self) {
        let mut queue = self.lock();
        while !queue.is_idle() {
            queue = self.idle.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn work(&self) {
        loop {
            let job = {
                let mut queue = self.lock();
                queue.running = false;
                if queue.is_idle() {
                    self.idle.notify_all();
                }
                let job = loop {
                    if let Some(job) = queue.urgent.pop_front() {
                        break Ok(job);
                    }
                    if let Some(session) = queue.sessions.pop_front() {
                        break Err(session);
                    }
                    queue = self.ready.wait(queue).unwrap_or_else(|p| p.into_inner());
                };
                // Marked under the same lock that took it, so that
                // wait_idle never sees a job between queue and run.
                queue.running = true;
                job
            };
            match job {
                // A request's job reports its own panic; see api::deferred.
                Ok(job) => drop(catch_unwind(AssertUnwindSafe(job))),
                // A closed and dropped session is simply gone. A session
                // whose turn panicked (a bug: render errors are reported,
                // not thrown) stays marked as queued, so it cannot spin.
                Err(weak) => {
                    if let Some(session) = weak.upgrade() {
                        if catch_unwind(AssertUnwindSafe(|| session.render_step())).is_ok() {
                            session.render_turn_over();
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn jobs_run_in_order_and_a_panic_does_not_stop_the_thread() {
        let renderer = Renderer::start().unwrap();
        let (tx, rx) = mpsc::channel();
        let first = tx.clone();
        renderer.submit(move || first.send(1).unwrap());
        renderer.submit(|| panic!("a job that fails"));
        renderer.submit(move || tx.send(2).unwrap());
        let got: Vec<i32> = (0..2).map(|_| rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap()).collect();
        assert_eq!(got, [1, 2]);
        renderer.wait_idle();
    }
}
