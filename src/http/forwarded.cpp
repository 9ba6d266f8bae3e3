#include "http/forwarded.hpp"

#include <algorithm>

#include <boost/asio/ip/address.hpp>

namespace clozit::http {
namespace {

namespace ip = boost::asio::ip;

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::optional<ip::address> ParseAddress(std::string_view text) {
  text = Trim(text);
  // "[2001:db8::1]" and "[2001:db8::1]:443", as some proxies write IPv6 peers; "1.2.3.4:5678" likewise.
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    text = text.substr(1, close - 1);
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    text = text.substr(0, text.find(':'));
  }
  boost::system::error_code ec;
  auto address = ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return ip::address(ip::make_address_v4(ip::v4_mapped, address.to_v6()));
  }
  return address;
}

}  // namespace

Result<TrustedProxies> TrustedProxies::Parse(std::string_view text, const std::string& field) {
  TrustedProxies out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find_first_of(", ", start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view entry = Trim(text.substr(start, end - start));
    start = end + 1;
    if (entry.empty()) continue;
    boost::system::error_code ec;
    const std::string item(entry);
    if (item.find('/') != std::string::npos) {
      if (item.find(':') != std::string::npos) {
        auto network = ip::make_network_v6(item, ec);
        if (!ec) out.v6_.push_back(network.canonical());
      } else {
        auto network = ip::make_network_v4(item, ec);
        if (!ec) out.v4_.push_back(network.canonical());
      }
    } else if (auto address = ParseAddress(item)) {
      if (address->is_v4()) {
        out.v4_.emplace_back(address->to_v4(), 32);
      } else {
        out.v6_.emplace_back(address->to_v6(), 128);
      }
    } else {
      ec = boost::asio::error::invalid_argument;
    }
    if (ec) {
      return Error::InvalidArgument(field, "'" + item + "' is not an IP address or a CIDR network");
    }
  }
  return out;
}

bool TrustedProxies::Contains(std::string_view text) const {
  auto address = ParseAddress(text);
  if (!address) return false;
  if (address->is_v4()) {
    const ip::network_v4 host(address->to_v4(), 32);
    for (const auto& network : v4_) {
      if (host == network || host.is_subnet_of(network)) return true;
    }
  } else {
    const ip::network_v6 host(address->to_v6(), 128);
    for (const auto& network : v6_) {
      if (host == network || host.is_subnet_of(network)) return true;
    }
  }
  return false;
}

std::string TrustedProxies::ClientAddress(const std::string& peer,
                                          std::optional<std::string_view> forwarded_for) const {
  if (empty() || !forwarded_for || !Contains(peer)) return peer;
  std::string client = peer;
  std::string_view rest = *forwarded_for;
  while (!rest.empty()) {
    size_t comma = rest.rfind(',');
    std::string_view hop = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    auto address = ParseAddress(hop);
    // Garbage where an address should be was written by the client, not a proxy: keep the last hop we trust.
    if (!address) break;
    client = address->to_string();
    if (!Contains(client)) break;
  }
  return client;
}

}  // namespace clozit::http
