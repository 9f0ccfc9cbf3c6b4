# The lab's mesh proxies (testkit/src/e2e/mesh.rs runs them): small stand-ins that make the same sockets, in the
# same namespaces, under the same uids, as the real proxies do, so that a node sees what it sees under a mesh.
#
#   mesh_proxy.py sidecar  CONFIG   Envoy in an Istio sidecar pod (run as uid 1337): outbound 15001, inbound 15006,
#                                   DNS proxy 15053 (with DNS capture), xDS stream to istiod
#   mesh_proxy.py linkerd  CONFIG   linkerd-proxy (uid 2102): outbound 127.0.0.1:4140, inbound 4143, admin 4191
#   mesh_proxy.py waypoint CONFIG   an ambient waypoint (Envoy, uid 1337, its own pod): HBONE on 15008
#   mesh_proxy.py ztunnel  CONFIG   ztunnel (root, its own pod): for each ambient pod a thread that enters the
#                                   pod's namespace and listens there on 15001, 15006, 15008 and 15053
#
# CONFIG is JSON: services {"clusterIP:port": [endpointIP, targetPort]}, pods {ip: "sidecar"|"ambient"|"linkerd"},
# waypoints {"clusterIP:port": waypointIP}, dns {fqdn: ip}, upstream_dns, istiod "ip:port", pod_ip, and for
# ztunnel ambient_pods {ip: netns name}.
#
# The lab's applications connect, hold or close, and send no bytes; so the relays carry the opening and closing
# of connections, and the multiplexed tunnels (Envoy's pooled upstreams between sidecars, HBONE) carry them as
# lines "OPEN <id> <target ip:port> <client ip:port>" and "CLOSE <id>".
import ctypes, itertools, json, os, select, socket, struct, sys, threading

SO_ORIGINAL_DST = 80
IP_TRANSPARENT = 19
SO_MARK = 36
ZTUNNEL_MARK = 0x539  # istio-cni's in-pod rules skip packets with this mark (InpodMark = 1337)
CLONE_NEWNET = 0x40000000
MODE, CONFIG = sys.argv[1], json.loads(sys.argv[2])
IDS = itertools.count(1)
held = []  # sockets kept open for the process's life (xDS streams, idle listeners)


def spawn(target, *args):
    threading.Thread(target=target, args=args, daemon=True).start()


def original_dst(conn):
    port, ip = struct.unpack("!2xH4s8x", conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16))
    return socket.inet_ntoa(ip), port


def endpoint(ip, port):
    """A ClusterIP's first endpoint (what EDS gives a proxy), or a pod address as it is."""
    found = CONFIG["services"].get("%s:%d" % (ip, port))
    return (found[0], found[1]) if found else (ip, port)


def mesh_of(ip):
    return CONFIG["pods"].get(ip)


def listen(port, host="0.0.0.0", transparent=False):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if transparent:
        s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
    s.bind((host, port))
    s.listen(128)
    held.append(s)
    return s


def serve(listener, handler):
    def loop():
        while True:
            conn, _ = listener.accept()
            spawn(handler, conn)
    spawn(loop)


def connect(target, source=None, mark=False, transparent=False):
    s = socket.socket()
    if mark:
        s.setsockopt(socket.SOL_SOCKET, SO_MARK, ZTUNNEL_MARK)
    if transparent:
        s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
    if source:
        s.bind(source)
    s.connect(target)
    return s


def tie(a, b):
    """Relays bytes both ways until either side closes, then closes both."""
    try:
        while True:
            for s in select.select([a, b], [], [])[0]:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def wait_closed(conn):
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass
    conn.close()


def read_line(conn):
    line = b""
    while not line.endswith(b"\n"):
        byte = conn.recv(1)
        if not byte:
            return None
        line += byte
    return line.decode().split()


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


class Tunnels:
    """Long-lived upstream connections carrying many application connections: `pooled` keeps idle ones per
    destination for the next application connection (Envoy's HTTP pools), otherwise one per destination is shared
    by all at once (HBONE: one connection between two identities)."""

    def __init__(self, open_upstream, pooled):
        self.open_upstream, self.pooled, self.lock, self.idle = open_upstream, pooled, threading.Lock(), {}

    def take(self, dest):
        with self.lock:
            idle = self.idle.setdefault(dest, [])
            if idle:
                return idle.pop() if self.pooled else idle[0]
            up = self.open_upstream(dest)
            if not self.pooled:
                idle.append(up)
            return up

    def give_back(self, dest, up):
        if self.pooled:
            with self.lock:
                self.idle.setdefault(dest, []).append(up)

    def carry(self, dest, app, target, client):
        up = self.take(dest)
        sid = next(IDS)
        with self.lock:
            up.sendall(("OPEN %d %s:%d %s:%d\n" % (sid, target[0], target[1], client[0], client[1])).encode())
        wait_closed(app)
        with self.lock:
            up.sendall(("CLOSE %d\n" % sid).encode())
        self.give_back(dest, up)


def streams(tunnel, open_stream):
    """The receiving end of a tunnel: each OPEN becomes a connection made by `open_stream`, each CLOSE ends it."""
    live = {}
    while True:
        words = read_line(tunnel)
        if words is None:
            break
        if words[0] == "OPEN":
            live[words[1]] = open_stream(addr(words[2]), addr(words[3]))
        elif words[0] == "CLOSE" and words[1] in live:
            live.pop(words[1]).close()
    for s in live.values():
        s.close()


def dns_proxy(mark):
    """The in-pod DNS proxy (Istio's DNS capture, ztunnel's DNS proxy): names it knows are answered in the pod
    and never reach the wire; others are forwarded from the pod's address, as the proxy does."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # On localhost, as Istio's agent and ztunnel listen: the reply then leaves from 127.0.0.1, which the REDIRECT's
    # conntrack entry expects, and is translated back to the resolver's address.
    sock.bind(("127.0.0.1", 15053))
    held.append(sock)

    def answer(query, client):
        qname, offset = [], 12
        while query[offset]:
            qname.append(query[offset + 1 : offset + 1 + query[offset]].decode().lower())
            offset += 1 + query[offset]
        qtype = struct.unpack(">H", query[offset + 1 : offset + 3])[0]
        ip = CONFIG["dns"].get(".".join(qname))
        if ip and qtype == 1:
            header = query[:2] + struct.pack(">HHHHH", 0x8580, 1, 1, 0, 0)
            record = struct.pack(">HHHIH", 0xC00C, 1, 1, 30, 4) + socket.inet_aton(ip)
            sock.sendto(header + query[12 : offset + 5] + record, client)
            return
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if mark:
            up.setsockopt(socket.SOL_SOCKET, SO_MARK, ZTUNNEL_MARK)
        up.settimeout(3)
        up.sendto(query, (CONFIG["upstream_dns"], 53))
        try:
            sock.sendto(up.recvfrom(4096)[0], client)
        finally:
            up.close()

    def loop():
        while True:
            query, client = sock.recvfrom(4096)
            spawn(answer, query, client)

    spawn(loop)


def xds():
    """The proxy's own connection to its control plane, held like a gRPC stream."""
    held.append(socket.create_connection(addr(CONFIG["istiod"])))


# --- Envoy in a sidecar pod ----------------------------------------------------------------------------------
def sidecar():
    # Between sidecars Envoy speaks HTTP/2 over mTLS on pooled upstreams to the endpoint's target port; to
    # anything else (passthrough, opaque TCP) one upstream per connection.
    pool = Tunnels(lambda dest: socket.create_connection(dest), pooled=True)

    def outbound(app):
        target = endpoint(*original_dst(app))
        if mesh_of(target[0]) == "sidecar":
            pool.carry(target, app, target, app.getpeername())
        else:
            tie(app, socket.create_connection(target))

    def to_app(target, _client):
        # The inbound passthrough cluster binds 127.0.0.6 (Istio's InboundPassthroughBindIpv4).
        return connect(target, source=("127.0.0.6", 0))

    def inbound(conn):
        target = original_dst(conn)
        if mesh_of(conn.getpeername()[0]) == "sidecar":
            streams(conn, to_app)
        else:
            tie(conn, to_app(target, None))

    serve(listen(15001), outbound)
    serve(listen(15006), inbound)
    listen(15090)  # Envoy's Prometheus endpoint
    if CONFIG.get("dns_capture"):
        dns_proxy(mark=False)
    xds()


# --- linkerd-proxy -------------------------------------------------------------------------------------------
def linkerd():
    def outbound(app):
        ip, port = endpoint(*original_dst(app))
        if mesh_of(ip) == "linkerd":
            up = socket.create_connection((ip, 4143))
            up.sendall(b"PORT %d\n" % port)  # the opaque transport header: the target port travels inside
        else:
            up = socket.create_connection((ip, port))
        tie(app, up)

    def inbound(conn):
        _, port = original_dst(conn)
        if port == 4143:
            port = int(read_line(conn)[1])
        tie(conn, socket.create_connection(("127.0.0.1", port)))

    serve(listen(4140, host="127.0.0.1"), outbound)
    serve(listen(4143), inbound)
    listen(4191)  # admin and metrics


# --- a waypoint ----------------------------------------------------------------------------------------------
def waypoint():
    # One HBONE connection from the waypoint to each destination pod's ztunnel, shared by every stream.
    tunnels = Tunnels(lambda dest: socket.create_connection((dest, 15008)), pooled=False)

    def stream(target, client):
        app = socket.socketpair()
        spawn(tunnels.carry, target[0], app[1], target, client)
        return app[0]

    serve(listen(15008), lambda conn: streams(conn, stream))
    xds()


# --- ztunnel -------------------------------------------------------------------------------------------------
def ztunnel():
    xds()  # from ztunnel's own pod
    libc = ctypes.CDLL(None, use_errno=True)
    ready = []

    def in_pod(pod_ip, netns):
        fd = os.open("/run/netns/" + netns, os.O_RDONLY)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + netns)
        os.close(fd)
        # From here this thread, and the threads it starts, make their sockets in the pod's namespace.
        tunnels = Tunnels(lambda dest: connect((dest, 15008), mark=True), pooled=False)

        def outbound(app):
            dialled = original_dst(app)
            target = endpoint(*dialled)
            via = CONFIG["waypoints"].get("%s:%d" % dialled)
            if via or mesh_of(target[0]) == "ambient":
                tunnels.carry(via or target[0], app, target, app.getpeername())
            else:
                tie(app, connect(target, mark=True))

        def reoriginate(target, client):
            # Toward the application with the client's own address, as ztunnel does.
            return connect(target, source=(client[0], 0), mark=True, transparent=True)

        serve(listen(15001), outbound)
        serve(listen(15006, transparent=True), lambda c: tie(c, reoriginate(original_dst(c), c.getpeername())))
        serve(listen(15008, transparent=True), lambda c: streams(c, reoriginate))
        dns_proxy(mark=True)
        ready.append(pod_ip)

    for pod_ip, netns in CONFIG["ambient_pods"].items():
        spawn(in_pod, pod_ip, netns)
    while len(ready) < len(CONFIG["ambient_pods"]):
        threading.Event().wait(0.01)


{"sidecar": sidecar, "linkerd": linkerd, "waypoint": waypoint, "ztunnel": ztunnel}[MODE]()
print("ready", flush=True)
sys.stdin.read()  # until the lab closes stdin or ends the process
