<?php
/**
 * A Gatecast backend in plain PHP: GatewayWorker's Events class, over HTTP.
 *
 * Gatecast POSTs one JSON body per socket event to BACKEND_URL/<event>
 * (connect, subscribe, publish, close), signed with BACKEND_SECRET. This script
 * answers them, and talks back to Gatecast through its server API, as
 * GatewayWorker code calls Gateway::sendToUid(). No Composer, no extension
 * beyond Debian's php-cli (hash, json, pcre; HTTP with file_get_contents).
 *
 *   BACKEND_SECRET=… GATECAST_URL=http://127.0.0.1:3000 GATECAST_API_KEY=… \
 *     php -S 127.0.0.1:8000 examples/php-backend/index.php
 *
 * The rules of this little chat (see README.md beside this file):
 *   connect    every user joins `lobby` and a private `inbox#<user>`; banned users are refused
 *   subscribe  `inbox#…` channels are personal: only `inbox#<your own id>`
 *   publish    a message with a banned word is dropped; `/msg bob hello` goes to bob alone
 *   close      one JSON line per closed socket in LOG_FILE
 *
 * Environment:
 *   BACKEND_SECRET    the HMAC key Gatecast signs with (Gatecast's BACKEND_SECRET); required
 *   GATECAST_URL      Gatecast's base URL, for the server API (default http://127.0.0.1:3000)
 *   GATECAST_API_KEY  Gatecast's API_KEY, sent as X-API-Key
 *   BANNED_WORDS      comma list (default "spam")
 *   BANNED_USERS      comma list of user ids refused at connect (default "mallory")
 *   LOG_FILE          where close events are appended (default: stderr)
 */

declare(strict_types=1);

// a warning printed into a response would break its JSON
ini_set('display_errors', 'stderr');

/** An environment variable, or $default when it is unset or empty. */
function env(string $name, string $default = ''): string
{
    $value = getenv($name);
    return $value === false || $value === '' ? $default : $value;
}

/** A comma list from the environment: trimmed, without empty items. */
function envList(string $name, string $default): array
{
    return array_values(array_filter(array_map('trim', explode(',', env($name, $default))), 'strlen'));
}

/** One answer to Gatecast: a status and a JSON body (none for 204). */
final class Answer
{
    public function __construct(public int $status = 200, public mixed $body = null)
    {
    }

    public static function json(mixed $body, int $status = 200): self
    {
        return new self($status, $body);
    }

    public static function error(int $status, string $code, string $message): self
    {
        return new self($status, ['error' => $code, 'message' => $message]);
    }

    public function send(): void
    {
        http_response_code($this->status);
        if ($this->status === 204) {
            return;
        }
        header('Content-Type: application/json');
        // an empty PHP array would be encoded as [], but Gatecast expects an object
        $body = $this->body ?? new stdClass();
        echo json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
    }
}

/** Gatecast's server API (section 4 of its contract): what GatewayWorker calls Gateway::*. */
final class Gateway
{
    /** Gateway::sendToUid(): a `direct` frame to every socket of the user. */
    public static function sendToUid(string $userId, mixed $data): void
    {
        self::call('POST', '/api/users/' . rawurlencode($userId) . '/messages', ['data' => $data]);
    }

    /** Gateway::sendToGroup(): a message on a channel, published as the server. */
    public static function sendToGroup(string $channel, mixed $data): void
    {
        self::call('POST', '/api/channels/' . rawurlencode($channel) . '/messages', ['data' => $data]);
    }

    /** One request; throws unless Gatecast answers 2xx. */
    private static function call(string $method, string $path, array $body): void
    {
        $url = rtrim(env('GATECAST_URL', 'http://127.0.0.1:3000'), '/') . $path;
        $context = stream_context_create(['http' => [
            'method' => $method,
            'header' => "Content-Type: application/json\r\nX-API-Key: " . env('GATECAST_API_KEY') . "\r\n",
            'content' => json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE),
            // Gatecast waits BACKEND_TIMEOUT (2 s by default) for this script's answer
            'timeout' => 1.5,
            // read the answer of a 4xx/5xx too instead of a bare warning
            'ignore_errors' => true,
        ]]);
        $answer = @file_get_contents($url, false, $context);
        // PHP fills $http_response_header with the status line and headers
        $statusLine = $http_response_header[0] ?? '';
        if ($answer === false || !preg_match('#^HTTP/\S+\s+2\d\d#', $statusLine)) {
            throw new RuntimeException("$method $path: " . ($statusLine !== '' ? "$statusLine $answer" : 'no answer'));
        }
    }
}

/**
 * The business logic: one method per event, as in GatewayWorker's Events class.
 * Each gets the decoded JSON body Gatecast sent and returns the Answer.
 */
final class Events
{
    /**
     * A socket is being opened (GatewayWorker: onConnect + onWebSocketConnect).
     * Body: { connectionId, userId, claims, channel, remoteAddress }.
     * 2xx accepts; `channels` are joined for the socket, `data` rides in its `ready` frame.
     * 401, 403 or 429 refuse the upgrade with that status.
     */
    public static function onConnect(array $event): Answer
    {
        $userId = (string) ($event['userId'] ?? '');
        if (in_array($userId, envList('BANNED_USERS', 'mallory'), true)) {
            return Answer::error(403, 'banned', "$userId is banned");
        }
        // Gateway::joinGroup() at connect: the answer's channels
        $channels = ['lobby'];
        $inbox = inboxOf($userId);
        if ($inbox !== null) {
            $channels[] = $inbox;
        }
        return Answer::json([
            'channels' => $channels,
            'data' => ['welcome' => "Welcome, $userId!", 'inbox' => $inbox],
        ]);
    }

    /**
     * A client asks to join a channel. Body: { connectionId, userId, channel }.
     * 2xx allows; 403 answers the client `error` `forbidden`.
     */
    public static function onSubscribe(array $event): Answer
    {
        $userId = (string) ($event['userId'] ?? '');
        $channel = (string) ($event['channel'] ?? '');
        // Gatecast already keeps `#` channels to the users they list;
        // this backend goes further: an inbox is its owner's alone
        if (str_starts_with($channel, 'inbox#') && $channel !== inboxOf($userId)) {
            return Answer::error(403, 'forbidden', "$channel is not your inbox");
        }
        return Answer::json(new stdClass());
    }

    /**
     * A client publishes (GatewayWorker: onMessage). Body: { connectionId, userId, channel, data }.
     * 2xx fans `data` out as it is ({"data": …} would replace it); {"skip": true} drops it
     * silently (the client's ack carries no id); 403 / 422 answer `forbidden` / `bad_request`.
     */
    public static function onMessage(array $event): Answer
    {
        $userId = (string) ($event['userId'] ?? '');
        $text = textOf($event['data'] ?? null);
        if ($text === null) {
            return Answer::json(new stdClass());
        }
        foreach (envList('BANNED_WORDS', 'spam') as $word) {
            // the word on its own, any case: "Spam!" yes, "spammer" no
            if (preg_match('/(?<![\p{L}\p{N}_])' . preg_quote($word, '/') . '(?![\p{L}\p{N}_])/iu', $text) === 1) {
                return Answer::json(['skip' => true]);
            }
        }
        if (preg_match('#^/msg(\s|$)#', $text) === 1) {
            if (preg_match('#^/msg\s+(\S+)\s+(.*\S)#s', $text, $m) !== 1) {
                return Answer::error(422, 'bad_request', 'usage: /msg <user> <text>');
            }
            try {
                Gateway::sendToUid($m[1], ['from' => $userId, 'text' => $m[2]]);
            } catch (RuntimeException $e) {
                error_log('gatecast: ' . $e->getMessage());
                // any status but 2xx/403/422: the client gets `error` `unavailable`
                return Answer::error(502, 'unavailable', 'could not deliver the message');
            }
            // delivered privately: not to the channel
            return Answer::json(['skip' => true]);
        }
        return Answer::json(new stdClass());
    }

    /**
     * A socket closed (GatewayWorker: onClose). Body: { connectionId, userId, channels, code }.
     * Nobody waits for the answer.
     */
    public static function onClose(array $event): Answer
    {
        $line = json_encode([
            'event' => 'close',
            'connectionId' => $event['connectionId'] ?? null,
            'userId' => $event['userId'] ?? null,
            'channels' => $event['channels'] ?? [],
            'code' => $event['code'] ?? null,
            'at' => date(DATE_ATOM),
        ], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE) . "\n";
        file_put_contents(env('LOG_FILE', 'php://stderr'), $line, FILE_APPEND | LOCK_EX);
        return new Answer(204);
    }
}

/**
 * The private channel of a user: `inbox#<id>`, or null for an id that cannot be
 * part of a channel name (a comma would make it a channel of several users).
 */
function inboxOf(string $userId): ?string
{
    return preg_match('/^[A-Za-z0-9_.:@-]{1,120}$/', $userId) === 1 ? "inbox#$userId" : null;
}

/** The text of a chat message: {"text": "…"} as the demo page sends it, or a bare string. */
function textOf(mixed $data): ?string
{
    if (is_string($data)) {
        return $data;
    }
    if (is_array($data) && is_string($data['text'] ?? null)) {
        return $data['text'];
    }
    return null;
}

/** Checks X-Gatecast-Signature: sha256=<hex HMAC-SHA256 of the raw body>. */
function signatureIsValid(string $rawBody, string $secret): bool
{
    $header = $_SERVER['HTTP_X_GATECAST_SIGNATURE'] ?? '';
    $expected = 'sha256=' . hash_hmac('sha256', $rawBody, $secret);
    // constant time: the comparison must not tell how much of a forgery was right
    return hash_equals($expected, $header);
}

function handle(): Answer
{
    if ($_SERVER['REQUEST_METHOD'] !== 'POST') {
        header('Allow: POST');
        return Answer::error(405, 'method_not_allowed', 'Gatecast POSTs its events');
    }
    $secret = env('BACKEND_SECRET');
    if ($secret === '') {
        error_log('gatecast: BACKEND_SECRET is not set; refusing every call');
        return Answer::error(500, 'not_configured', 'BACKEND_SECRET is not set');
    }
    // the signature covers the bytes as sent: check them before decoding anything
    $rawBody = file_get_contents('php://input');
    if (!signatureIsValid($rawBody, $secret)) {
        return Answer::error(401, 'bad_signature', 'missing or wrong X-Gatecast-Signature');
    }
    $event = json_decode($rawBody, true);
    if (!is_array($event)) {
        return Answer::error(400, 'bad_request', 'the body is not a JSON object');
    }
    // BACKEND_URL may have a path of its own: the event is the last segment
    // (X-Gatecast-Event carries the same name)
    $path = (string) parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
    return match (basename($path)) {
        'connect' => Events::onConnect($event),
        'subscribe' => Events::onSubscribe($event),
        'publish' => Events::onMessage($event),
        'close' => Events::onClose($event),
        default => Answer::error(404, 'unknown_event', 'no such event: ' . basename($path)),
    };
}

handle()->send();
