//! What every session shares (the model, its directions, the images, the
//! render thread), and who may open a session.
//!
//! Opening a session is the one request that costs memory and render time,
//! so it is limited twice (issue 19):
//! - a rate: [`SESSION_BURST`] at once, then one per [`SESSION_REFILL`]
//!   (429 with Retry-After);
//! - a count: [`MAX_SESSIONS`] open. A new one closes the least recently
//!   used idle session (no event stream, no task, no request for
//!   [`IDLE_AFTER`]); when none is idle it is refused (503 with
//!   Retry-After). Every open tab holds an event stream, so a burst of
//!   requests can never close a tab that someone is using.

use crate::items::Source;
use crate::render::Renderer;
use crate::refusal::Refusal;
use crate::session::{Models, Session};
use editone::edit::sefa::Direction;
use editone::model::Model;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Sessions open at once.
pub const MAX_SESSIONS: usize = 8;
/// Sessions that may be opened at once after a quiet spell: a user may
/// open a tab for each of the [`MAX_SESSIONS`].
pub const SESSION_BURST: u32 = MAX_SESSIONS as u32;
/// After a burst, one more session may be opened this often.
pub const SESSION_REFILL: Duration = Duration::from_secs(2);
/// A session without an event stream or task is idle after this long
/// without requests. A page reconnects its stream within a few seconds.
pub const IDLE_AFTER: Duration = Duration::from_secs(15);
/// Largest batch a page may ask for.
pub const MAX_COUNT: usize = 48;

/// The studio: what every session shares, and the open sessions.
pub struct Studio {
    /// The model every session edits: latents, directions, d* and presets
    /// are its. Images render through it too, unless the source has a
    /// model of its own ([`Source::renders`]: a `--folder --tune`).
    pub model: Arc<Model>,
    /// Its SeFa directions.
    pub directions: Arc<Vec<Direction>>,
    /// Where a page's images come from.
    pub source: Source,
    /// Batch images of a session that does not say.
    pub default_count: usize,
    /// The port the server listens on (for the Host and Origin checks).
    pub port: u16,
    /// The one render thread.
    pub renderer: Arc<Renderer>,
    /// How long a session goes unused before it may be closed.
    pub idle_after: Duration,
    sessions: Mutex<Vec<Arc<Session>>>,
    openings: Mutex<Bucket>,
    ids: RandomState,
    made: AtomicUsize,
}

impl Studio {
    /// A studio with no sessions yet.
    pub fn new(model: Arc<Model>, directions: Vec<Direction>, source: Source, default_count: usize, port: u16, renderer: Arc<Renderer>) -> Studio {
        Studio {
            model,
            directions: Arc::new(directions),
            source,
            default_count,
            port,
            renderer,
            idle_after: IDLE_AFTER,
            sessions: Mutex::new(Vec::new()),
            openings: Mutex::new(Bucket::full(Instant::now())),
            ids: RandomState::new(),
            made: AtomicUsize::new(0),
        }
    }

    fn sessions(&self) -> MutexGuard<'_, Vec<Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a session of `count` images may be opened now; call
    /// [`Self::open_session`] (on the render thread) if so.
    pub fn admit(&self, count: usize) -> Result<(), Refusal> {
        if !(1..=MAX_COUNT).contains(&count) {
            return Err(Refusal::new(400, format!("count {count} must be 1 to {MAX_COUNT}")));
        }
        let wait = self.openings.lock().unwrap_or_else(|p| p.into_inner()).take(Instant::now());
        if let Err(wait) = wait {
            let message = format!("sessions are being opened too fast; at most {SESSION_BURST} at once, then one every {} s", SESSION_REFILL.as_secs());
            return Err(Refusal::new(429, message).retry_after(wait.as_secs_f64().ceil() as u64));
        }
        let sessions = self.sessions();
        if sessions.len() >= MAX_SESSIONS && !sessions.iter().any(|s| s.is_idle(self.idle_after)) {
            return Err(self.full());
        }
        Ok(())
    }

    fn full(&self) -> Refusal {
        let message = format!("{MAX_SESSIONS} sessions are in use (each open page holds one); close a page, or try again later");
        Refusal::new(503, message).retry_after(self.idle_after.as_secs())
    }

    /// A session with `count` batch images, closing the least recently used
    /// idle session if [`MAX_SESSIONS`] are open. Makes latents and so
    /// belongs on the render thread.
    pub fn open_session(&self, count: usize) -> Result<Arc<Session>, Refusal> {
        let items = self.source.items(&self.model, count)?;
        let models = Models { edits: Arc::clone(&self.model), renders: Arc::clone(self.source.renders(&self.model)) };
        let session = Session::start(self.new_id(), models, Arc::clone(&self.directions), Arc::clone(&self.renderer), items)?;
        let mut sessions = self.sessions();
        if sessions.len() >= MAX_SESSIONS {
            let idle = sessions.iter().enumerate().filter(|(_, s)| s.is_idle(self.idle_after)).min_by_key(|(_, s)| s.last_used());
            match idle.map(|(i, _)| i) {
                Some(i) => sessions.remove(i).close(),
                None => {
                    // Filled by other requests since admit().
                    session.close();
                    return Err(self.full());
                }
            }
        }
        sessions.push(Arc::clone(&session));
        Ok(session)
    }

    /// The open session `id`, noting that a request named it.
    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        let session = self.sessions().iter().find(|s| s.id == id).cloned()?;
        session.touch();
        Some(session)
    }

    /// 128 random bits from the standard library's randomly keyed hasher.
    fn new_id(&self) -> String {
        let n = self.made.fetch_add(1, Ordering::Relaxed);
        let half = |salt: u64| self.ids.hash_one((n, salt, std::time::SystemTime::now()));
        format!("{:016x}{:016x}", half(1), half(2))
    }
}

/// A token bucket: [`SESSION_BURST`] tokens, one more per
/// [`SESSION_REFILL`].
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(now: Instant) -> Bucket {
        Bucket { tokens: SESSION_BURST as f64, at: now }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let refilled = now.saturating_duration_since(self.at).as_secs_f64() / SESSION_REFILL.as_secs_f64();
        self.tokens = (self.tokens + refilled).min(SESSION_BURST as f64);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(SESSION_REFILL.mul_f64(1.0 - self.tokens))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::items::Source;

    #[test]
    fn the_bucket_allows_a_burst_then_one_per_refill() {
        let t0 = Instant::now();
        let mut bucket = Bucket::full(t0);
        for _ in 0..SESSION_BURST {
            assert!(bucket.take(t0).is_ok());
        }
        let wait = bucket.take(t0).unwrap_err();
        assert_eq!(wait, SESSION_REFILL);
        assert!(bucket.take(t0 + SESSION_REFILL / 2).is_err());
        assert!(bucket.take(t0 + SESSION_REFILL).is_ok());
        assert!(bucket.take(t0 + SESSION_REFILL).is_err());
        // A long quiet spell refills to the burst, no more.
        let later = t0 + SESSION_REFILL * 100;
        assert_eq!((0..SESSION_BURST + 1).filter(|_| bucket.take(later).is_ok()).count(), SESSION_BURST as usize);
    }

    fn studio() -> Studio {
        let model = Model::load_default(editone::Engine::get().unwrap().placement()).expect("make setup installs the default model");
        let directions = editone::edit::sefa::directions(&model, 2, None).unwrap();
        let source = Source::Seeds { seeds: (0..10).collect(), class: None };
        Studio::new(Arc::new(model), directions, source, 1, 0, Renderer::start().unwrap())
    }

    #[test]
    fn a_full_studio_closes_only_idle_sessions_and_refuses_otherwise() {
        let mut studio = studio();
        studio.idle_after = Duration::ZERO;
        let mut sessions: Vec<Arc<Session>> = (0..MAX_SESSIONS).map(|_| studio.open_session(1).unwrap()).collect();
        // Every session but the first has a page listening: only the first
        // is idle, and the next session closes it.
        let streams: Vec<_> = sessions[1..].iter().map(|s| s.events.subscribe().unwrap()).collect();
        assert!(studio.admit(1).is_ok());
        let ninth = studio.open_session(1).unwrap();
        assert!(studio.session(&sessions[0].id).is_none(), "the idle session was not closed");
        // Its memory goes with the last request that holds it: the render
        // queue holds sessions weakly.
        let closed = Arc::downgrade(&sessions.remove(0));
        let freed = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            closed.upgrade().is_none()
        });
        assert!(freed, "the closed session is still held");
        assert!(studio.session(&sessions[0].id).is_some() && studio.session(&ninth.id).is_some());
        // Now all are in use; a tenth is refused and closes nothing.
        let _ninth_stream = ninth.events.subscribe().unwrap();
        let refused = studio.admit(1).unwrap_err();
        assert_eq!((refused.status, refused.retry_after), (503, Some(1)), "{}", refused.message);
        assert_eq!(studio.open_session(1).err().map(|r| r.status), Some(503));
        assert!(sessions.iter().all(|s| studio.session(&s.id).is_some()));
        drop(streams);
        // A page that went is idle again (idle_after is zero here).
        assert!(studio.admit(1).is_ok());
        studio.renderer.wait_idle();
    }

    #[test]
    fn counts_out_of_range_are_refused_before_the_rate_limit() {
        let studio = studio();
        for _ in 0..20 {
            assert_eq!(studio.admit(0).unwrap_err().status, 400);
            assert_eq!(studio.admit(MAX_COUNT + 1).unwrap_err().status, 400);
        }
        let admitted = (0..SESSION_BURST + 1).map(|_| studio.admit(1)).filter(Result::is_ok).count();
        assert_eq!(admitted, SESSION_BURST as usize);
        let refused = studio.admit(1).unwrap_err();
        assert_eq!(refused.status, 429);
        assert!(refused.retry_after.is_some_and(|s| (1..=SESSION_REFILL.as_secs()).contains(&s)), "{refused:?}");
    }
}
