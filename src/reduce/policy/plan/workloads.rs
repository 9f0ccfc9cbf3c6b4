//! The per-workload policies of the plan: a server's ingress from its observed clients, a client's egress to
//! its observed servers. What cannot be expressed becomes a rule on the edge's ports without peers, said in a
//! note, never a silent denial (`super`'s module docs).

use std::collections::{BTreeMap, BTreeSet};

use super::mesh::{self, PeerMesh};
use super::{Peer, Planner, Policy, Rule, describe_ports, edge, host_cidr, object_name, tcp, workload_notes};
use crate::reduce::model::{Call, Client, Edge, ServiceMap};
use crate::reduce::policy::inventory::{TargetPort, Workload};

impl Planner<'_> {
    pub(super) fn ingress(&mut self, map: &ServiceMap) {
        // Server (namespace, name) → its clients with the edge.
        let mut servers: BTreeMap<(String, String), Vec<(&Client, Edge)>> = BTreeMap::new();
        for client in &map.clients {
            for call in &client.calls {
                let Some(namespace) = &call.namespace else { continue };
                if call.is_service() || !self.in_scope(namespace) {
                    continue;
                }
                servers.entry((namespace.clone(), call.server.clone())).or_default().push((client, edge(client, call)));
            }
        }
        for ((namespace, name), clients) in servers {
            self.server_policy(&namespace, &name, &clients);
        }
    }

    fn server_policy(&mut self, namespace: &str, name: &str, clients: &[(&Client, Edge)]) {
        let server = match self.selectable(namespace, name) {
            Ok(server) => server.clone(),
            Err(unselectable) => {
                if unselectable.isolatable {
                    self.keep_open(namespace, "ingress", &unselectable.why);
                }
                return self.left_out(format!("no ingress policy for {}", unselectable.why));
            }
        };
        let mut rules = Vec::new();
        let mut peers_note = Vec::new();
        for (client, edge) in clients {
            let (rule, note) = self.client_rule(&server, client, edge);
            rules.push(rule);
            peers_note.push(note);
        }
        if self.info.is_dns_server(&server) {
            peers_note.push("everyone: DNS (a backend of a Service on port 53)".to_owned());
            let ports = self.info.dns_services().flat_map(|s| s.ports.iter()).filter(|(p, _)| *p == 53);
            let ports: BTreeSet<TargetPort> = ports.map(|(_, t)| t.clone()).collect();
            rules.push(Rule { peers: Vec::new(), ports: ports.into_iter().collect(), dns: false });
        }
        rules.extend(self.allow_from_rules());
        let mut notes = workload_notes(&server);
        notes.insert("peers".to_owned(), peers_note.join("; "));
        if let Some(server_mesh) = server.mesh {
            notes.insert("mesh".to_owned(), mesh::ingress_note(server_mesh));
        }
        self.plan.policies.push(Policy {
            namespace: namespace.to_owned(),
            name: object_name(name, "ingress"),
            selector: server.selector.clone().unwrap_or_default(),
            ingress: Some(rules),
            egress: None,
            notes,
        });
    }

    /// The rule letting one client in, and its note; a client that cannot be selected is any source on the
    /// edge's ports.
    fn client_rule(&mut self, server: &Workload, client: &Client, edge: &Edge) -> (Rule, String) {
        let (ports, why) = self.edge_ports(edge, server);
        match self.selectable(&client.namespace, &client.name) {
            Ok(client) => {
                let ports = mesh::wire_ports(server.mesh, PeerMesh::Known(client.mesh), ports);
                let note = format!("{}.{}: {} ({why})", client.name, client.namespace, describe_ports(&ports));
                (Rule { peers: vec![Self::peer_of(client)], ports, dns: false }, note)
            }
            Err(unselectable) => {
                let ports = mesh::wire_ports(server.mesh, PeerMesh::Unknown, ports);
                let note = format!("any source on {} ({why})", describe_ports(&ports));
                self.left_out(format!(
                    "ingress of {}/{} allows {note} for client {}",
                    server.namespace, server.name, unselectable.why
                ));
                let peers_note = format!("{}.{}: {note}", client.name, client.namespace);
                (Rule { peers: Vec::new(), ports, dns: false }, peers_note)
            }
        }
    }

    pub(super) fn egress(&mut self, client: &Client) {
        let me = match self.selectable(&client.namespace, &client.name) {
            Ok(me) => me.clone(),
            Err(unselectable) => {
                if unselectable.isolatable {
                    self.keep_open(&client.namespace, "egress", &unselectable.why);
                }
                return self.left_out(format!("no egress policy for {}", unselectable.why));
            }
        };
        let mut rules = Vec::new();
        let mut peers_note = Vec::new();
        let mut open = Vec::new();
        for call in &client.calls {
            match self.egress_rule(client, call) {
                Ok((rule, note)) => {
                    rules.push(rule);
                    peers_note.push(note);
                }
                Err(why) => {
                    let (rule, note) = self.open_egress_rule(client, call, &why);
                    open.push(note);
                    if !rules.contains(&rule) {
                        rules.push(rule);
                    }
                }
            }
        }
        peers_note.push("DNS".to_owned());
        rules.extend(self.dns_rules());
        let mut notes = workload_notes(&me);
        notes.insert("peers".to_owned(), peers_note.join("; "));
        if let Some(my_mesh) = me.mesh {
            notes.insert("mesh".to_owned(), mesh::egress_note(my_mesh));
        }
        if !open.is_empty() {
            notes.insert("open".to_owned(), open.join("; "));
        }
        self.plan.policies.push(Policy {
            namespace: client.namespace.clone(),
            name: object_name(&client.name, "egress"),
            selector: me.selector.clone().unwrap_or_default(),
            ingress: None,
            egress: Some(rules),
            notes,
        });
    }

    /// Any destination on the edge's ports, for a server the policy cannot name: the call keeps working, and
    /// the note says why.
    fn open_egress_rule(&mut self, client: &Client, call: &Call, why: &str) -> (Rule, String) {
        let ports = self.ports.get(&edge(client, call)).map(|p| p.iter().copied().map(tcp).collect());
        let ports: Vec<TargetPort> = ports.unwrap_or_default();
        let note = format!("any destination on {} for {why}", describe_ports(&ports));
        self.left_out(format!("egress of {}/{} allows {note}", client.namespace, client.name));
        (Rule { peers: Vec::new(), ports, dns: false }, note)
    }

    fn egress_rule(&self, client: &Client, call: &Call) -> Result<(Rule, String), String> {
        let Some(namespace) = &call.namespace else {
            if self.options.fqdn {
                let rule = Rule { peers: vec![Peer::Fqdn(call.server.clone())], ports: Vec::new(), dns: false };
                return Ok((rule, format!("{}: all ports (outside the cluster, by name)", call.server)));
            }
            return Err(format!(
                "{} (outside the cluster: a NetworkPolicy cannot name a DNS name; --policy-format cilium can)",
                call.server
            ));
        };
        if call.is_api_server() {
            let cidrs: Vec<String> = self.info.api_server.iter().map(|ip| host_cidr(*ip)).collect();
            if cidrs.is_empty() && !self.options.fqdn {
                return Err("the API server (its addresses are unknown: add `endpointslices` of namespace \
                            default to the inventory)"
                    .to_owned());
            }
            let ports = self.info.api_server_ports.iter().copied().map(tcp).collect();
            let rule = Rule { peers: vec![Peer::ApiServer(cidrs)], ports, dns: false };
            return Ok((rule, "the API server".to_owned()));
        }
        let server = self.selectable(namespace, &call.server).map_err(|u| u.why)?;
        let (ports, why) = self.edge_ports(&edge(client, call), server);
        let me = self.info.workload(&client.namespace, &client.name).map(|me| me.mesh);
        let ports = mesh::wire_ports(server.mesh, me.map_or(PeerMesh::Unknown, PeerMesh::Known), ports);
        let note = format!("{}.{}: {} ({why})", server.name, server.namespace, describe_ports(&ports));
        Ok((Rule { peers: vec![Self::peer_of(server)], ports, dns: false }, note))
    }
}
