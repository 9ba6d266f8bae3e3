// http/forwarded: the client's address behind reverse proxies the operator trusts.
//
// Behind nginx or a load balancer every connection comes from the proxy, so per-address rate limits (sign-up,
// log-in) would throttle everyone together and audit records would name the proxy. The proxy appends the
// address it saw to X-Forwarded-For; a client can put anything before it. So the header is read from the right,
// skipping the trusted proxies' own addresses, and the first address that is not one of them is the client's.
// Connections from anywhere else keep their socket address, whatever they send.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

#include "common/result.hpp"

namespace clozit::http {

class TrustedProxies {
 public:
  /// Addresses or CIDR networks, separated by commas or spaces ("127.0.0.1, 10.0.0.0/8, fd00::/8"); empty trusts
  /// none. invalid_argument names `field`.
  static Result<TrustedProxies> Parse(std::string_view text, const std::string& field = "server.trusted_proxies");

  bool empty() const { return v4_.empty() && v6_.empty(); }
  bool Contains(std::string_view address) const;
  /// The client's address for a request from `peer` carrying `forwarded_for` (X-Forwarded-For, possibly absent).
  std::string ClientAddress(const std::string& peer, std::optional<std::string_view> forwarded_for) const;

 private:
  std::vector<boost::asio::ip::network_v4> v4_;
  std::vector<boost::asio::ip::network_v6> v6_;
};

}  // namespace clozit::http
