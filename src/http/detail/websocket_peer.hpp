// One open WebSocket (server side after the upgrade, or a client after its
// handshake): the read loop that feeds the handler, and the bounded outbound
// queue with its single write in flight. Everything here runs on the
// connection's executor (its I/O thread on the server, a strand in the client); the public
// WebSocketConnection methods dispatch onto it.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <deque>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "http/websocket.hpp"

namespace clozit::http::detail {

template <class NextLayer>
class WebSocketPeer final : public WebSocketConnection, public std::enable_shared_from_this<WebSocketPeer<NextLayer>> {
 public:
  using Stream = boost::beast::websocket::stream<NextLayer>;

  WebSocketPeer(Stream stream, std::unique_ptr<WebSocketHandler> handler, WebSocketOptions options, std::string label)
      : ws_(std::move(stream)),
        executor_(ws_.get_executor()),
        handler_(std::move(handler)),
        options_(options),
        label_(std::move(label)),
        write_done_(executor_) {
    namespace websocket = boost::beast::websocket;
    boost::beast::get_lowest_layer(ws_).expires_never();  // the websocket timeouts below take over
    websocket::stream_base::timeout timeouts{options_.handshake_timeout, options_.idle_timeout, true};
    ws_.set_option(timeouts);
    ws_.read_message_max(options_.message_limit);
  }

  void SendText(std::string message) override { Enqueue(std::move(message), true); }
  void SendBinary(std::string message) override { Enqueue(std::move(message), false); }

  void Close(CloseCode code, std::string reason) override {
    boost::asio::dispatch(executor_, [self = this->shared_from_this(), code, reason = std::move(reason)]() mutable {
      if (self->closed_ || self->close_requested_) return;
      self->close_requested_ = true;
      self->close_reason_ =
          boost::beast::websocket::close_reason(static_cast<boost::beast::websocket::close_code>(code), reason);
      if (!self->writing_) self->StartWriting();
    });
  }

  void Abort() override {
    boost::asio::dispatch(executor_, [self = this->shared_from_this()] { self->AbortOnStrand(); });
  }

  boost::asio::any_io_executor executor() const override { return executor_; }

  /// Tells the handler the connection is open. On the executor, before ReadLoop.
  void Open() { handler_->OnOpen(this->shared_from_this()); }

  /// Reads until the connection ends, then waits for the writer and calls OnClose. On the executor.
  boost::asio::awaitable<void> ReadLoop() {
    namespace asio = boost::asio;
    namespace websocket = boost::beast::websocket;
    auto self = this->shared_from_this();
    boost::beast::flat_buffer buffer;
    boost::system::error_code ec;
    for (;;) {
      co_await ws_.async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      auto data = buffer.cdata();
      std::string_view message(static_cast<const char*>(data.data()), data.size());
      if (ws_.got_text()) {
        handler_->OnText(message);
      } else {
        handler_->OnBinary(message);
      }
      buffer.consume(buffer.size());
    }
    uint16_t code = 1006;  // abnormal closure: no close frame
    std::string reason;
    if (ec == websocket::error::closed || (close_sent_ && abort_code_ == 0)) {
      // We started the close: Beast ends our read with operation_aborted once the peer answered it.
      code = ws_.reason().code != websocket::close_code::none ? ws_.reason().code : close_reason_.code;
      reason = std::string(ws_.reason().reason.data(), ws_.reason().reason.size());
    } else if (ec == websocket::error::message_too_big) {
      code = static_cast<uint16_t>(CloseCode::kTooBig);
    } else if (abort_code_ != 0) {
      code = abort_code_;
    }
    if (ec != websocket::error::closed && ec != asio::error::operation_aborted && ec != boost::beast::error::timeout &&
        ec != asio::error::eof && ec != asio::error::connection_reset && abort_code_ == 0) {
      spdlog::debug("websocket {}: read ended: {}", label_, ec.message());
    }
    closed_ = true;
    queue_.clear();
    if (writing_) {
      boost::system::error_code ignored;
      boost::beast::get_lowest_layer(ws_).socket().cancel(ignored);
      while (writing_) {
        write_done_.expires_at(asio::steady_timer::time_point::max());
        co_await write_done_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      }
    }
    boost::system::error_code ignored;
    boost::beast::get_lowest_layer(ws_).socket().close(ignored);
    auto handler = std::move(handler_);
    handler->OnClose(code, reason);
  }

 private:
  struct Outbound {
    std::string data;
    bool text = true;
  };

  void Enqueue(std::string message, bool text) {
    boost::asio::dispatch(executor_, [self = this->shared_from_this(), message = std::move(message), text]() mutable {
      if (self->closed_ || self->close_requested_ || self->abort_code_ != 0) return;
      if (self->queue_.size() >= self->options_.queue_limit) {
        spdlog::warn("websocket {}: peer too slow ({} messages queued): disconnecting", self->label_,
                     self->queue_.size());
        self->abort_code_ = static_cast<uint16_t>(CloseCode::kTryAgainLater);
        self->AbortOnStrand();
        return;
      }
      self->queue_.push_back({std::move(message), text});
      if (!self->writing_) self->StartWriting();
    });
  }

  void AbortOnStrand() {
    if (closed_) return;
    if (abort_code_ == 0) abort_code_ = 1006;
    boost::system::error_code ignored;
    boost::beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  // A plain completion-handler chain rather than a coroutine per burst: a media stream writes one small
  // message every 20 ms, so each burst is one message and a spawn (its frame and its post) per write
  // would cost as much as the write.
  void StartWriting() {
    writing_ = true;
    WriteNext();
  }

  void WriteNext() {
    if (!queue_.empty() && !closed_) {
      in_flight_ = std::move(queue_.front());
      queue_.pop_front();
      ws_.text(in_flight_.text);
      ws_.async_write(boost::asio::buffer(in_flight_.data),
                      [self = this->shared_from_this()](boost::system::error_code ec, std::size_t) {
                        if (ec) return self->WriteEnded(ec);
                        self->WriteNext();
                      });
      return;
    }
    if (close_requested_ && !closed_) {
      close_sent_ = true;
      ws_.async_close(close_reason_,
                      [self = this->shared_from_this()](boost::system::error_code ec) { self->WriteEnded(ec); });
      return;
    }
    WriteEnded({});
  }

  void WriteEnded(boost::system::error_code ec) {
    if (ec && !closed_) AbortOnStrand();
    writing_ = false;
    write_done_.cancel();
  }

  Stream ws_;
  boost::asio::any_io_executor executor_;
  std::unique_ptr<WebSocketHandler> handler_;
  WebSocketOptions options_;
  std::string label_;
  boost::asio::steady_timer write_done_;
  // State below is touched only on the executor.
  std::deque<Outbound> queue_;
  Outbound in_flight_;  // the message being written (its buffer must outlive the write)
  bool writing_ = false;
  bool closed_ = false;
  bool close_requested_ = false;
  bool close_sent_ = false;
  uint16_t abort_code_ = 0;
  boost::beast::websocket::close_reason close_reason_;
};

}  // namespace clozit::http::detail
