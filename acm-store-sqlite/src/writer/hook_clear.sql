DELETE FROM hooks WHERE request_id = ?1
