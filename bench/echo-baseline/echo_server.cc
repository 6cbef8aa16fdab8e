// echo-baseline: the ceiling relay-bench measures the relay against. A stock
// websocketpp echo server (websocketpp::config::asio: standalone Asio, no
// TLS, the library's default settings) that sends every message back as it
// came, on one thread, with TCP_NODELAY (which the relay means to set too)
// and the relay's listen backlog. Built by the same CMake project, so with the same compiler
// and flags as the relay. Logging is off (the relay logs nothing per
// message either).
//
//   echo-baseline [--host 127.0.0.1] [--port 0]
//   prints "echo-baseline: listening ws on HOST:PORT"; SIGTERM/SIGINT stop it (exit 0).
#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "asio.hpp"
#include "websocketpp/config/asio_no_tls.hpp"
#include "websocketpp/server.hpp"

namespace {

using Server = websocketpp::server<websocketpp::config::asio>;

int Usage() {
  std::fprintf(stderr, "usage: echo-baseline [--host IPV4/IPV6 (127.0.0.1)] [--port N (0: any)]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return Usage();
    if (i + 1 >= argc) return Usage();
    if (arg == "--host") {
      host = argv[++i];
    } else if (arg == "--port") {
      port = std::atoi(argv[++i]);
    } else {
      return Usage();
    }
  }

  Server server;
  server.clear_access_channels(websocketpp::log::alevel::all);
  server.clear_error_channels(websocketpp::log::elevel::all);
  server.init_asio();
  server.set_reuse_addr(true);
  server.set_listen_backlog(1024);
  // TCP_NODELAY once the TCP connection exists. (websocketpp's socket_init
  // handler runs before accept, on a socket that is not open yet: an option
  // set there fails with EBADF, silently when the error is ignored.)
  server.set_tcp_pre_init_handler([&server](websocketpp::connection_hdl hdl) {
    asio::error_code ec;
    server.get_con_from_hdl(hdl)->get_raw_socket().set_option(asio::ip::tcp::no_delay(true), ec);
    if (ec) {
      std::fprintf(stderr, "echo-baseline: TCP_NODELAY: %s\n", ec.message().c_str());
      std::exit(1);
    }
  });
  server.set_message_handler([&server](websocketpp::connection_hdl hdl, Server::message_ptr msg) {
    websocketpp::lib::error_code ec;
    server.send(hdl, msg->get_payload(), msg->get_opcode(), ec);
  });

  asio::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) {
    std::fprintf(stderr, "echo-baseline: --host must be an IP address, not \"%s\"\n", host.c_str());
    return 2;
  }
  server.listen(asio::ip::tcp::endpoint(address, static_cast<unsigned short>(port)), ec);
  if (ec) {
    std::fprintf(stderr, "echo-baseline: cannot listen on %s:%d: %s\n", host.c_str(), port,
                 ec.message().c_str());
    return 1;
  }
  server.start_accept(ec);
  if (ec) {
    std::fprintf(stderr, "echo-baseline: cannot accept: %s\n", ec.message().c_str());
    return 1;
  }
  asio::signal_set signals(server.get_io_service(), SIGTERM, SIGINT);
  signals.async_wait([&server](const asio::error_code&, int) {
    websocketpp::lib::error_code ignored;
    server.stop_listening(ignored);
    server.stop();
  });
  const auto bound = server.get_local_endpoint(ec);
  std::printf("echo-baseline: listening ws on %s:%u\n", host.c_str(),
              static_cast<unsigned>(bound.port()));
  std::fflush(stdout);
  server.run();
  return 0;
}
