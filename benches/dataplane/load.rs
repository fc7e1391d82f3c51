//! Figures 5-6: the real server under load (Authorize and GenerateDisposableToken vs Health/Check).

use super::*;

// ---------------------------------------------------------------------------------------------
// Figures 5-6: the real server under load

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Call {
    Health,
    Authorize,
    Disposable,
}

#[derive(Clone)]
pub(crate) struct Clients {
    pub(crate) health: HealthClient<Channel>,
    pub(crate) verifier: pb::verifier_client::VerifierClient<Channel>,
    pub(crate) token: token::token_client::TokenClient<Channel>,
}

/// What one segment of load measured.
#[derive(Default)]
pub(crate) struct Load {
    pub(crate) calls: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
    /// CPU time of the whole process (server and load generator) over the segment.
    pub(crate) cpu: Duration,
    pub(crate) latencies: Vec<Duration>,
}

/// CPU time this process has used (user + system), from /proc/self/stat (clock ticks of 10 ms:
/// fine over one-second segments).
pub(crate) fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

impl Load {
    pub(crate) fn absorb(&mut self, other: Load) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.cpu += other.cpu;
        self.latencies.extend(other.latencies);
    }

    pub(crate) fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    /// CPU time per call, server and client together.
    pub(crate) fn cpu_per_call(&self) -> Duration {
        self.cpu / u32::try_from(self.calls.max(1)).unwrap_or(u32::MAX)
    }

    /// How busy the cores were: CPU time over wall time (2.0 = both cores of two).
    pub(crate) fn busy(&self) -> f64 {
        self.cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub(crate) fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index.min(self.latencies.len() - 1)]
    }
}

pub(crate) async fn one_call(clients: &mut Clients, call: Call, owner: &str) -> bool {
    match call {
        Call::Health => clients
            .health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .is_ok_and(|r| r.get_ref().status == ServingStatus::Serving as i32),
        Call::Authorize => clients
            .verifier
            .authorize(pb::AuthorizeRequest {
                credential: owner.to_owned(),
                action: pb::Action::CacheRead as i32,
                cache: "c".into(),
                key: b"k".to_vec(),
                ..Default::default()
            })
            .await
            .is_ok_and(|r| r.get_ref().allowed),
        Call::Disposable => clients
            .token
            .generate_disposable_token(token::GenerateDisposableTokenRequest {
                expires: Some(token::generate_disposable_token_request::Expires {
                    valid_for_seconds: 60,
                }),
                auth_token: owner.to_owned(),
                permissions: Some(read_cache_permissions()),
                token_id: String::new(),
            })
            .await
            .is_ok_and(|r| !r.get_ref().api_key.is_empty()),
    }
}

pub(crate) fn read_cache_permissions() -> pm::Permissions {
    use pm::permissions_type as pt;
    pm::Permissions {
        kind: Some(pm::permissions::Kind::Explicit(pm::ExplicitPermissions {
            permissions: vec![pm::PermissionsType {
                kind: Some(pt::Kind::CachePermissions(pt::CachePermissions {
                    role: pm::CacheRole::CacheReadOnly as i32,
                    cache: Some(pt::cache_permissions::Cache::CacheSelector(
                        pt::CacheSelector {
                            kind: Some(pt::cache_selector::Kind::CacheName("c".into())),
                        },
                    )),
                    cache_item: Some(pt::cache_permissions::CacheItem::AllItems(pt::All {})),
                })),
            }],
        })),
    }
}

/// `in_flight` tasks, spread over the channels, each issuing `call` back to back for `duration`.
pub(crate) async fn load(
    clients: &[Clients],
    in_flight: usize,
    call: Call,
    owner: &Arc<str>,
    duration: Duration,
) -> Load {
    let started = Instant::now();
    let cpu_before = process_cpu();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..in_flight)
        .map(|i| {
            let mut clients = clients[i % clients.len()].clone();
            let owner = owner.clone();
            tokio::spawn(async move {
                let mut load = Load::default();
                loop {
                    let t0 = Instant::now();
                    if t0 >= deadline {
                        break;
                    }
                    let ok = one_call(&mut clients, call, &owner).await;
                    load.latencies.push(t0.elapsed());
                    load.calls += 1;
                    load.errors += u64::from(!ok);
                }
                load
            })
        })
        .collect();
    let mut total = Load::default();
    for task in tasks {
        total.absorb(task.await.expect("load task"));
    }
    total.elapsed = started.elapsed();
    total.cpu = process_cpu().saturating_sub(cpu_before);
    total
}

pub(crate) async fn start_server() -> (
    SocketAddr,
    Arc<str>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let options = NodeOptions {
        cell: "bench".into(),
        endpoint: addr.to_string(),
        vend_rate_per_second: 0,
        vend_burst: 0,
        ..Default::default()
    };
    let ring = KeyRing::ephemeral().expect("key ring");
    let node = node::Node::embedded(ring, Arc::new(SystemClock), &options);
    let (owner, _) = node
        .authority()
        .bootstrap(ACCOUNT, false)
        .await
        .expect("bootstrap");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        server::run(listener, &node, server::Serving::default(), async {
            let _ = stopped.await;
        })
        .await
        .expect("server");
    });
    (addr, owner.into(), stop, handle)
}

/// What signing one disposable token costs: `credential::sign` (jsonwebtoken) vs a bare Ed25519
/// signature over the same signing input with a pre-parsed key. Explains figure 6.
pub(crate) fn sign_cost(scale: &Scale) -> Row {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use ed25519_dalek::Signer;
    let pem = authcell::keyring::generate_pem().expect("pem");
    let ring = KeyRing::from_pem("bench", &pem).expect("ring");
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).expect("signing key");
    let now = SystemClock.now();
    let claims = disposable_claims(now, &uuid::Uuid::now_v7().to_string());
    let token = credential::sign(&ring, &claims).expect("sign");
    let (input, _) = token.rsplit_once('.').expect("jws");
    let mut baseline = |r: Range<usize>| {
        for _ in r {
            black_box(key.sign(black_box(input.as_bytes())));
        }
    };
    let mut measured = |r: Range<usize>| {
        for _ in r {
            black_box(credential::sign(&ring, black_box(&claims)).expect("sign"));
        }
    };
    per_token_row(
        "sign 1 token: ed25519 sign vs credential::sign",
        scale,
        &mut baseline,
        &mut measured,
    )
}

/// What vending one token costs in process, without gRPC: `vending_caller` (authenticating the
/// caller), the request's validation and `mint_disposable`, vs `credential::sign` of a token
/// of the same shape. Explains the rest of figure 6.
pub(crate) fn vend_cost(scale: &Scale) -> Row {
    use authcell::authority::requests::DisposableToken;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ring = KeyRing::ephemeral().expect("key ring");
    let options = NodeOptions {
        cell: "bench".into(),
        endpoint: "bench:443".into(),
        vend_rate_per_second: 0,
        vend_burst: 0,
        ..Default::default()
    };
    let node =
        runtime.block_on(async { node::Node::embedded(ring, Arc::new(SystemClock), &options) });
    let authority = node.authority().clone();
    let (owner, _) = runtime
        .block_on(authority.bootstrap(ACCOUNT, false))
        .expect("bootstrap");
    let request = || token::GenerateDisposableTokenRequest {
        expires: Some(token::generate_disposable_token_request::Expires {
            valid_for_seconds: 60,
        }),
        auth_token: owner.clone(),
        permissions: Some(read_cache_permissions()),
        token_id: String::new(),
    };
    let keys = authority.verifier().keys().load();
    let claims = disposable_claims(SystemClock.now(), &uuid::Uuid::now_v7().to_string());
    let mut baseline = |r: Range<usize>| {
        for _ in r {
            black_box(credential::sign(&keys, black_box(&claims)).expect("sign"));
        }
    };
    let mut measured = |r: Range<usize>| {
        runtime.block_on(async {
            for _ in r {
                let req = black_box(request());
                let parent = authority
                    .vending_caller(&req.auth_token, None)
                    .expect("caller");
                let req = DisposableToken::try_from(req).expect("valid request");
                black_box(
                    authority
                        .mint_disposable(&parent, req)
                        .await
                        .expect("minted"),
                );
            }
        })
    };
    per_token_row(
        "vend 1 token in process vs credential::sign",
        scale,
        &mut baseline,
        &mut measured,
    )
}

/// A per-token micro benchmark of figure 6: interleaved batches of half the uncached batch.
fn per_token_row(
    label: &str,
    scale: &Scale,
    baseline: &mut dyn FnMut(Range<usize>),
    measured: &mut dyn FnMut(Range<usize>),
) -> Row {
    let batch = (scale.uncached_batch / 2).max(1);
    let m = interleaved(scale.uncached_rounds, batch, &mut [baseline, measured]);
    Row::new(label, ns(m[0]), ns(m[1]), m[1] / m[0])
}

pub(crate) fn figures_load(report: &mut Report, scale: &Scale, sign_row: Option<Row>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let workers = runtime.metrics().num_workers();
    let (mut health, mut authorize, mut disposable, per_round) = runtime.block_on(async {
        let (addr, owner, stop, handle) = start_server().await;
        let mut clients = Vec::new();
        for _ in 0..scale.channels {
            // One HTTP/2 connection per channel.
            let channel = Channel::from_shared(format!("http://{addr}"))
                .expect("url")
                .connect()
                .await
                .expect("connect");
            clients.push(Clients {
                health: HealthClient::new(channel.clone()),
                verifier: pb::verifier_client::VerifierClient::new(channel.clone()),
                token: token::token_client::TokenClient::new(channel),
            });
        }
        // Every call kind must work before it is timed; the first Authorize caches the key.
        for call in [Call::Health, Call::Authorize, Call::Disposable] {
            assert!(
                one_call(&mut clients[0].clone(), call, &owner).await,
                "{call:?} failed before the benchmark"
            );
        }
        let warm_up = scale.load_segment / 2;
        for call in [Call::Health, Call::Authorize, Call::Disposable] {
            load(&clients, scale.in_flight, call, &owner, warm_up).await;
        }
        let (mut h, mut a, mut d) = (Load::default(), Load::default(), Load::default());
        let mut per_round = Vec::new();
        for round in 0..scale.load_rounds {
            let order = if round.is_multiple_of(2) {
                [Call::Health, Call::Authorize, Call::Disposable]
            } else {
                [Call::Disposable, Call::Authorize, Call::Health]
            };
            let mut rates = [0.0; 3];
            for call in order {
                let l = load(&clients, scale.in_flight, call, &owner, scale.load_segment).await;
                let (slot, total) = match call {
                    Call::Health => (0, &mut h),
                    Call::Authorize => (1, &mut a),
                    Call::Disposable => (2, &mut d),
                };
                rates[slot] = l.rate();
                total.absorb(l);
            }
            per_round.push(rates);
        }
        drop(clients);
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
        (h, a, d, per_round)
    });
    for (name, l) in [
        ("Health/Check", &health),
        ("Authorize", &authorize),
        ("GenerateDisposableToken", &disposable),
    ] {
        assert_eq!(
            l.errors, 0,
            "{name}: {} of {} calls failed",
            l.errors, l.calls
        );
        assert!(l.calls > 0, "{name}: no call completed");
    }
    let setup = format!(
        "{} HTTP/2 connections, {} calls in flight, {} x {:.1} s interleaved segments each, \
         {workers} runtime workers shared by server and load generator",
        scale.channels,
        scale.in_flight,
        scale.load_rounds,
        scale.load_segment.as_secs_f64()
    );
    let mut sign_row = sign_row;
    let hr = health.rate();
    let (h50, h99) = (health.percentile(0.5), health.percentile(0.99));
    for (id, name, column, measured, slot) in [
        ("5", "Authorize", "Authorize", &mut authorize, 1),
        (
            "6",
            "GenerateDisposableToken",
            "Disposable",
            &mut disposable,
            2,
        ),
    ] {
        let rate = measured.rate();
        let (p50, p99) = (measured.percentile(0.5), measured.percentile(0.99));
        let mut throughput = Row::new(
            "throughput",
            format!("{hr:.0}/s"),
            format!("{rate:.0}/s"),
            rate / hr,
        );
        if id == "5" {
            throughput = throughput.goal(">= 0.80x", |r| r >= 0.8);
        }
        let mut rows = vec![
            throughput,
            Row::new(
                "p50 latency",
                ms(h50),
                ms(p50),
                p50.as_secs_f64() / h50.as_secs_f64(),
            ),
            Row::new(
                "p99 latency",
                ms(h99),
                ms(p99),
                p99.as_secs_f64() / h99.as_secs_f64(),
            ),
            Row::new(
                "CPU per call (server + client)",
                ns(health.cpu_per_call().as_nanos() as f64),
                ns(measured.cpu_per_call().as_nanos() as f64),
                measured.cpu_per_call().as_secs_f64() / health.cpu_per_call().as_secs_f64(),
            ),
            Row::new(
                "cores busy",
                format!("{:.2}", health.busy()),
                format!("{:.2}", measured.busy()),
                measured.busy() / health.busy(),
            ),
        ];
        if id == "6" {
            rows.extend(sign_row.take());
            rows.push(vend_cost(scale));
        }
        report.figure(
            id,
            &format!("{name} vs grpc.health.v1.Health/Check on the same server"),
            ("Health/Check", column),
            &rows,
        );
        let ratios: Vec<f64> = per_round.iter().map(|r| r[slot] / r[0]).collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        report.note(&format!(
            "{setup}; throughput ratio per round {lo:.2}x..{hi:.2}x; {} calls measured",
            measured.calls
        ));
    }
}
