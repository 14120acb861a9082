import ws from 'k6/ws';

export default function () {
  ws.connect('ws://localhost/socket', {}, function (socket) {
    socket.close();
  });
}
