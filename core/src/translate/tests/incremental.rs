//! The remembering translator must answer exactly as a full translation of the same
//! objects, whatever changed in between, and convert only what it has to.

use super::*;
use crate::translate::Translator;

/// A small deterministic generator: the sequence is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n
    }
}

const NAMESPACES: [&str; 3] = ["a", "b", "c"];

/// Everything the routes read, as documents keyed by what they are, so a step can replace
/// or remove one.
struct World {
    docs: BTreeMap<String, String>,
}

fn namespace(name: &str, shared: bool) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {{shared: '{shared}'}}}}\n"
    )
}

fn grant(from_ns: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {{name: from-{from_ns}, namespace: b}}
spec:
  from: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: {from_ns}}}]
  to: [{{group: '', kind: Service}}]
"
    )
}

fn slice(ns: &str, service: &str, ip: u8) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {service}-x, namespace: {ns}, labels: {{kubernetes.io/service-name: {service}}}}}
addressType: IPv4
ports: [{{port: 8080}}]
endpoints: [{{addresses: [10.0.0.{ip}]}}]
"
    )
}

fn gateway_with(hostname: &str) -> String {
    gateway(&format!(
        "[{{name: open, port: 80, protocol: HTTP, allowedRoutes: {{namespaces: {{from: All}}}}}},
          {{name: shared, port: 81, protocol: HTTP, hostname: '{hostname}',
            allowedRoutes: {{namespaces: {{from: Selector, selector: {{matchLabels: {{shared: 'true'}}}}}}}}}}]"
    ))
}

/// A route whose every part is drawn: parent section, hostname, backend (local, another
/// namespace's, missing), weight (a negative one rejects the route).
fn random_route(rng: &mut Lcg, ns: &str, name: &str) -> String {
    let section = [
        "",
        ", sectionName: open",
        ", sectionName: shared",
        ", sectionName: none",
    ][rng.below(4)];
    let hostname = ["x.example", "y.other", "z.example"][rng.below(3)];
    let backend = [
        "{name: web, port: 80}",
        "{name: web, namespace: b, port: 80}",
        "{name: web, port: 81}",
        "{name: gone, port: 80}",
    ][rng.below(4)];
    let weight = [1, 5, -1, 1, 1][rng.below(5)];
    let backend = backend.replacen('{', &format!("{{weight: {weight}, "), 1);
    route(
        ns,
        name,
        &format!(
            "  parentRefs: [{{name: gw, namespace: infra{section}}}]\n  hostnames: [{hostname}]\n  rules: [{{backendRefs: [{backend}]}}]\n"
        ),
    )
}

impl World {
    fn new(rng: &mut Lcg) -> Self {
        let mut docs = BTreeMap::new();
        docs.insert("class".to_string(), CLASS.to_string());
        docs.insert("gateway".to_string(), gateway_with("*.example"));
        for (i, ns) in NAMESPACES.iter().enumerate() {
            docs.insert(format!("ns/{ns}"), namespace(ns, i != 2));
            docs.insert(format!("svc/{ns}"), service(ns, "web", "[{port: 80}]"));
            docs.insert(format!("slice/{ns}"), slice(ns, "web", i as u8));
            for r in 0..8 {
                let name = format!("r{r}");
                docs.insert(format!("route/{ns}/{name}"), random_route(rng, ns, &name));
            }
        }
        World { docs }
    }

    fn objects(&self) -> Vec<Object> {
        let docs: Vec<&str> = self.docs.values().map(String::as_str).collect();
        objects(&docs)
    }

    /// One change of the kind a cluster sees; returns whether it touched only routes.
    fn step(&mut self, rng: &mut Lcg) -> bool {
        let ns = NAMESPACES[rng.below(3)];
        match rng.below(10) {
            0..=5 => {
                let name = format!("r{}", rng.below(10));
                let key = format!("route/{ns}/{name}");
                if rng.below(4) == 0 {
                    self.docs.remove(&key);
                } else {
                    self.docs.insert(key, random_route(rng, ns, &name));
                }
                return true;
            }
            6 => {
                let ports = ["[{port: 80}]", "[{port: 80}, {port: 81}]", "[{port: 82}]"];
                self.docs
                    .insert(format!("svc/{ns}"), service(ns, "web", ports[rng.below(3)]));
            }
            7 => {
                let key = format!("grant/{ns}");
                if self.docs.remove(&key).is_none() {
                    self.docs.insert(key, grant(ns));
                }
            }
            8 => {
                self.docs
                    .insert(format!("ns/{ns}"), namespace(ns, rng.below(2) == 0));
            }
            _ => {
                let hostname = ["*.example", "x.example", "*.other"][rng.below(3)];
                self.docs
                    .insert("gateway".to_string(), gateway_with(hostname));
            }
        }
        false
    }
}

#[test]
fn remembering_translator_answers_as_a_full_translation_after_every_change() {
    let mut rng = Lcg(7);
    let mut world = World::new(&mut rng);
    let mut translator = Translator::new(opts());
    let mut routes_only_steps = 0;
    for step in 0..400 {
        let objects = world.objects();
        let remembered = translator.translate(&objects);
        assert_eq!(
            remembered,
            translate(&objects, &opts()),
            "after step {step}"
        );
        if world.step(&mut rng) {
            routes_only_steps += 1;
        }
    }
    assert!(
        routes_only_steps > 100,
        "the walk must mostly change routes"
    );
}

#[test]
fn a_changed_route_is_the_only_one_converted_again() {
    let mut rng = Lcg(11);
    let mut world = World::new(&mut rng);
    let mut translator = Translator::new(opts());
    translator.translate(&world.objects());
    assert_eq!(
        translator.converted_last(),
        24,
        "the first call converts every route"
    );

    translator.translate(&world.objects());
    assert_eq!(translator.converted_last(), 0, "nothing changed");

    world.docs.insert(
        "route/b/r3".to_string(),
        route(
            "b",
            "r3",
            "  parentRefs: [{name: gw, namespace: infra}]\n  rules: [{backendRefs: [{name: web, port: 80}]}]\n",
        ),
    );
    world
        .docs
        .insert("slice/b".to_string(), slice("b", "web", 99));
    let t = translator.translate(&world.objects());
    assert_eq!(
        translator.converted_last(),
        1,
        "one route changed; endpoints are not read by routes"
    );
    assert_eq!(
        backend(&t, "b/web:80").endpoints,
        ["10.0.0.99:8080".parse::<std::net::SocketAddr>().unwrap()]
    );

    world
        .docs
        .insert("svc/c".to_string(), service("c", "web", "[{port: 81}]"));
    translator.translate(&world.objects());
    assert_eq!(
        translator.converted_last(),
        24,
        "a Service's ports are read by every route"
    );
}
