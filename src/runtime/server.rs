//! Starting the gateway: pingora server, TLS listeners, HTTP/2 tuning, signals.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use pingora::protocols::http::v2::server::default_h2_options;
use pingora::proxy::http_proxy;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};

use crate::config::Config;
use crate::events::Events;
use crate::gateway::backends::{self, OpenRegistry, Pool};
use crate::gateway::decide::Access;
use crate::gateway::proxy::Gateway;
use crate::gateway::state::State;
use crate::pingora_fixes::handshake::Handshake;
use crate::pingora_fixes::lifecycle::{GracefulStop, InFlight};
use crate::pingora_fixes::stall::WatchedApp;
use crate::runtime::acme_http::AcmeHttpApp;
use crate::runtime::admin::AdminApp;
use crate::runtime::reload::Reloader;
use crate::telemetry::audit::Audit;
use crate::telemetry::metrics::Metrics;
use crate::tls::acme::Acme;
use crate::tls::{self, LiveTls};
use pingora::listeners::ListenerConfig;
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::services::background::background_service;
use pingora::services::listening::Service;

/// HTTP/2 flow-control windows. The 64 KiB protocol default makes h2 uploads several times
/// slower than HTTP/1.1 on a fast link; 8 MiB per stream and 16 MiB per connection keep
/// layer transfers near line rate while bounding what one client can make us buffer.
const H2_STREAM_WINDOW: u32 = 8 << 20;
const H2_CONNECTION_WINDOW: u32 = 16 << 20;

/// Shared state the services are built from.
struct Parts {
    state: Arc<State>,
    in_flight: InFlight,
    live_tls: Arc<LiveTls>,
    metrics: Arc<Metrics>,
    audit: Arc<Audit>,
    events: Arc<Events>,
    pool: Arc<Pool>,
    open_registry: OpenRegistry,
}

/// Runs the gateway until a signal stops it. Returns only on start-up errors or after a
/// stop; every error is a sentence for the operator.
pub fn serve(config: Config, path: &std::path::Path) -> Result<(), String> {
    let mut addresses = config.listen.clone();
    addresses.extend(config.admin);
    addresses.extend(config.tls.acme().and_then(|a| a.http_listen));
    check_bindable(&addresses)?;
    tls::install_crypto_provider(config.tls.min_version)?;
    let audit = match &config.audit {
        Some(path) => Audit::open(path).map_err(|e| format!("audit.path: {e}"))?,
        None => Audit::off(),
    };

    let server_conf = ServerConf {
        threads: config.threads,
        grace_period_seconds: Some(config.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, server_conf);
    server.bootstrap();

    let metrics = Arc::new(Metrics::default());
    crate::telemetry::metrics::install_global(Arc::clone(&metrics));
    let open_registry = OpenRegistry::default();
    let health_check = background_service(
        "registry health check",
        backends::pool(&config.upstreams, &open_registry)?,
    );
    let pool = health_check.task();
    server.add_service(health_check);
    let audit = Arc::new(audit);
    let state = Arc::new(State::new(&config, Access::from_config(&config)));
    if let Some(oidc) = &state.live().access.authn.oidc {
        oidc.prefetch();
    }
    let acme = match config.tls.acme() {
        Some(settings) => Some(start_acme(settings, &config.listen)?),
        None => None,
    };
    let parts = Parts {
        live_tls: Arc::new(LiveTls::new(&config.tls, state.clone(), acme.clone())),
        state,
        in_flight: InFlight::default(),
        metrics,
        audit,
        events: Arc::new(Events::start(&config.webhooks)),
        pool,
        open_registry,
    };
    server.add_service(proxy_service(&server, &parts, &config)?);
    let reloader = Arc::new(Reloader {
        path: path.to_path_buf(),
        state: Arc::clone(&parts.state),
    });
    if let Some(addr) = config.admin {
        let app = AdminApp {
            metrics: Arc::clone(&parts.metrics),
            state: Arc::clone(&parts.state),
            pool: Arc::clone(&parts.pool),
            events: Arc::clone(&parts.events),
            acme: acme.clone(),
        };
        let mut admin = Service::new("admin".to_string(), app);
        admin.add_tcp(&addr.to_string());
        server.add_service(admin);
    }
    if let Some((acme, addr)) = acme
        .as_ref()
        .and_then(|a| Some((a, a.settings.http_listen?)))
    {
        let app = AcmeHttpApp {
            acme: Arc::clone(acme),
            https_port: config.listen.first().map_or(443, |a| a.port()),
        };
        let mut http = Service::new("acme http".to_string(), app);
        http.add_tcp(&addr.to_string());
        server.add_service(http);
    }
    reloader.spawn(config.watch);

    tracing::info!(listen = ?config.listen, admin = ?config.admin, upstreams = config.upstreams.len(), http2 = config.tls.http2, "portcullis starting");
    for warning in config.tls.identity().iter().flat_map(|i| &i.warnings) {
        tracing::warn!("tls.certificate: {warning}");
    }
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let events = Arc::clone(&parts.events);
    let stop = GracefulStop {
        in_flight: parts.in_flight.clone(),
        grace_period: config.grace_period,
        before_exit: Arc::new(move |deadline| events.drain(deadline)),
    };
    server.run(RunArgs {
        shutdown_signal: Box::new(stop),
    });
    Ok(())
}

/// No read buffer under TLS on client connections (pingora's default is 64 KiB each).
///
/// rustls keeps its own record buffer and reads into it directly. pingora allocates the
/// buffer zeroed at accept, so once memory is being reused every held connection, idle or
/// not, pays for all of it: with 1000 idle connections held again and again, RSS settled
/// near 120 MiB with 64 KiB, 94 MiB with 16 KiB and 70 MiB with none. Uploads cost about
/// 5 % more gateway CPU per GiB without it (more, smaller reads) and are no slower: the
/// registry is the limit. See bench/README.md.
const L4_READ_BUFFER: usize = 0;

/// The public TLS service: the proxy on every `listen` address.
fn proxy_service(
    server: &Server,
    parts: &Parts,
    config: &Config,
) -> Result<impl pingora::services::ServiceWithDependents, String> {
    let gateway = Gateway {
        state: Arc::clone(&parts.state),
        in_flight: parts.in_flight.clone(),
        metrics: Arc::clone(&parts.metrics),
        audit: Arc::clone(&parts.audit),
        events: Arc::clone(&parts.events),
        pool: Arc::clone(&parts.pool),
        open_registry: parts.open_registry.clone(),
        tag_locks: Default::default(),
    };
    let mut proxy = http_proxy(&server.configuration, gateway);
    let mut h2 = default_h2_options();
    h2.initial_window_size(H2_STREAM_WINDOW);
    h2.initial_connection_window_size(H2_CONNECTION_WINDOW);
    proxy.h2_options = Some(h2);
    let app = WatchedApp::new(
        proxy,
        config.timeouts.idle,
        config.limits.max_connections,
        Handshake::new(&parts.live_tls)?,
    );
    let mut service = Service::new("portcullis".to_string(), app);
    for addr in &config.listen {
        service.add_listener(
            ListenerConfig::tcp(addr.to_string())
                .l4_buffer(L4BufferSettings::default().read(L4_READ_BUFFER)),
        );
    }
    Ok(service)
}

/// Starts the ACME manager; its orders wait for the listener validations come to.
fn start_acme(
    settings: &crate::tls::acme::AcmeSettings,
    listen: &[SocketAddr],
) -> Result<Arc<Acme>, String> {
    let listener = match settings.challenge {
        crate::tls::acme::ChallengeKind::TlsAlpn01 => listen.first().copied(),
        crate::tls::acme::ChallengeKind::Http01 => settings.http_listen,
    }
    .ok_or("tls.acme: no listener for the validations to reach")?;
    Acme::start(settings.clone(), listener)
}

/// Fails early, with the address named, when a listen address cannot be bound (in use, not
/// local, no permission), instead of pingora's panic once it is running.
fn check_bindable(listen: &[SocketAddr]) -> Result<(), String> {
    let problems: Vec<String> = listen
        .iter()
        .filter_map(|addr| {
            TcpListener::bind(addr)
                .err()
                .map(|e| format!("  - listen: cannot bind {addr}: {e}"))
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("cannot listen:\n{}", problems.join("\n")))
    }
}
